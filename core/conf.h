/* conf.h: mdmd.conf, a redis-style "key value" file driven by one table.
 * A struct conf is filled by conf_load() and read-only afterwards; SIGHUP
 * builds a new one and swaps it in only when everything validates. */
#ifndef MDMD_CONF_H
#define MDMD_CONF_H

#include <stddef.h>
#include "util.h"

#define CONF_MAX_WORKERS 256

struct conf {
    /* listeners */
    char *listen;        /* 1-way TLS: enrollment, admin REST, console */
    char *mdm_listen;    /* 2-way TLS: check-in and command */
    char *port_file;     /* written after bind: "listen PORT\nmdm_listen PORT\n" */
    char *public_url;    /* base URL of the 1-way listener, goes into profiles */
    char *mdm_url;       /* base URL of the MDM listener, goes into profiles */
    char *server_names;  /* space-separated SANs of the generated server cert */
    char *tls_cert_file; /* empty: <ca_dir>/server.crt, generated */
    char *tls_key_file;  /* empty: <ca_dir>/server.key, generated */
    char *tls_ciphers;   /* TLS <= 1.2 cipher list */
    int tls_auto;        /* derived: cert/key were not configured, mdmd makes them */
    /* state */
    char *data_dir;
    char *ca_dir;      /* empty: <data_dir>/ca */
    char *ca_key_type; /* rsa2048 | rsa4096 | ec256 */
    char *ca_common_name;
    int ca_validity_days;
    int cert_validity_days; /* server and device certificates */
    /* redis */
    char *redis;            /* unix path or host:port, or a cluster's seed list; empty: private */
    char *redis_server_bin; /* used for the private one */
    int redis_timeout_ms;   /* per command */
    int redis_history_len;  /* entries kept in each mdm:res:{UDID} */
    int redis_history_max_bytes; /* and their results' stored bytes at most */
    int idle_cache_ms;           /* an Idle poll's empty answer trusted this long (0: never) */
    int redis_wait_replicas;     /* replicas an enqueue waits for before 201; -1 auto */
    int redis_wait_ms;           /* how long it waits */
    char *redis_layout;          /* auto | single | cluster (store_set_layout) */
    int history_page_bytes;      /* a page of GET .../commands stops past this many bytes */
    /* APNs */
    char *apns_cert_file;
    char *apns_key_file;
    char *apns_p12_file;
    char *apns_p12_password;
    char *apns_host;
    int apns_port;
    char *apns_ca_file; /* empty: system trust store */
    int apns_expiration_s;
    int apns_connections;
    int apns_allow_topic_change; /* SIGHUP installs a push certificate of another topic */
    int push_coalesce_ms;        /* enqueues for one device within this window: one push */
    int job_retry_max_s;         /* a bulk job retries a failing Redis this long, then fails */
    int job_push_backlog; /* a bulk job pauses while this many pushes are pending (0: never) */
    char *apns_topic;     /* Topic for MDM profiles when no push certificate is set */
    /* enrollment */
    int enroll_challenge_ttl_s;  /* life of a Profile Service challenge and OTA identity */
    char *enroll_device_ca_file; /* CAs a device's phase-1 signature must chain to; empty: any */
    int enroll_require_issued;   /* Authenticate only with certificates enrollment issued */
    int provision_retry_s;       /* provisioning left pending is retried after this long */
    int provision_on_enroll;     /* first TokenUpdate: queue assigned content + DeviceInformation */
    char *device_key_type;       /* keys of issued device identities: rsa2048 | rsa4096 | ec256 */
    char *pkcs12_mode;           /* PKCS12 algorithms: legacy | aes (ca_pkcs12) */
    /* SCEP and device request authentication (issue 6) */
    char *scep_listen;                /* plain-HTTP listener serving /scep; empty: none */
    char *scep_url;                   /* URL in SCEP profiles; empty: <public_url>/scep */
    char *scep_challenge;             /* static challenge password; empty: one-time ones only */
    int scep_challenge_ttl_s;         /* life of a one-time challenge from GET /enroll/profile */
    int scep_renewal_grace_s;         /* a device that missed its renewal answer may retry */
    char *enroll_profile_token;       /* bearer secret for GET /enroll/profile; empty: off */
    char *mdm_auth;                   /* mtls | signature | any */
    char *mdm_client_cert;            /* MDM listener handshake: required | optional | none */
    int mdm_trust_client_cert_header; /* honour RFC 9440 Client-Cert from mdm_trusted_proxies */
    char *mdm_trusted_proxies;        /* space-separated proxy IP addresses */
    int mdm_auth_tls;                 /* derived: mTLS (or a proxied certificate) identifies */
    int mdm_auth_sig;                 /* derived: Mdm-Signature identifies */
    int mdm_client_cert_mode;         /* derived: 0 none, 1 optional, 2 required */
    int scep_allow_throwaway_signer;  /* PKCSReq signed by a self-signed key not the CSR's */
    int scep_allow_sha1;              /* SHA-1 signer digests */
    int scep_allow_des;               /* single-DES envelopes */
    int scep_allow_rsa1024;           /* CSRs with RSA keys of 1024..2047 bits */
    /* the rest of the check-in protocol (issue 17) */
    char *user_channel;       /* UserAuthenticate: decline (410) | accept */
    int user_channel_accept;  /* derived */
    char *token_source_dir;   /* GetToken: <dir>/<TokenServiceType> holds a static token */
    char *token_jwt_key_file; /* GetToken "jwt" sources: the RSA key that signs (RS256) */
    /* fleet operations (issue 19) */
    char *webhook_url;       /* space-separated URLs that get every event; empty: off */
    char *webhook_secret;    /* HMAC-SHA256 key of X-Mdmd-Signature */
    char *webhook_ca_file;   /* CAs https:// receivers are verified with; empty: the system store */
    int webhook_max_age_s;   /* an event retried this long goes to the dead-letter stream */
    int webhook_retry_max_s; /* the backoff's cap */
    int webhook_timeout_s;   /* per delivery attempt */
    int feed_max_streams;    /* GET /v1/events streams open at once (handlers/feed) */
    int feed_stream_buffer;  /* unsent bytes a stream may hold before it is dropped */
    int feed_heartbeat_s;    /* a ": ping" after this long without output */
    int feed_poll_ms;        /* how often each stream reads the event stream */
    int repush_after_s; /* re-push a device that did not connect this long after a push; 0 off */
    int repush_max_s;   /* the re-push backoff's cap */
    int repush_max_attempts; /* then the device is flagged push_unanswered */
    int notnow_repush_s;     /* a NotNow'd command's device is pushed again after this long */
    int stale_after_s;       /* a device not seen this long is stale */
    /* limits */
    int max_body_size;       /* admin uploads and command reports (/mdm/connect) */
    int max_small_body_size; /* every other endpoint: check-in, OTA, SCEP, login forms */
    int max_plist_depth;     /* shape limits before any plist or JSON parser */
    int max_plist_nodes;
    int max_plist_string;
    int max_json_depth;
    int cms_max_signers; /* SignerInfos in one signed message */
    int cms_max_certs;   /* certificates in one signed message */
    int log_buffer_size; /* bytes of log lines waiting for a slow stderr */
    int max_header_size;
    int request_timeout_s;
    int max_connections; /* per listener */
    int shutdown_timeout_s;
    int crypto_threads; /* worker threads for key generation and hashing */
    char *workers_str;  /* "workers": a number or "auto" */
    int workers;        /* derived: worker processes; 1 = no supervisor (core/super.h) */
    /* web console */
    int console_session_idle_s; /* a session ends after this long unused */
    int console_session_max_s;  /* and this long after the login in any case */
    /* logging */
    int log_level;      /* enum log_level */
    int syslog;         /* bool */
    int metrics_public; /* bool: GET /metrics without the API key */
};

/* Fills cf with the defaults of the table.  Free with conf_clear(). */
void conf_init(struct conf *cf);
void conf_clear(struct conf *cf); /* frees strings; cf can be re-inited */

/* Reads path over the current values of cf.  On error writes
 * "file:line: key: message" into err (errlen bytes) and returns -1. */
int conf_load(struct conf *cf, const char *path, char *err, size_t errlen) MDMD_MUSTCHECK;
/* One "key value" override (command line); file/line name it in errors. */
int conf_set(struct conf *cf, const char *key, const char *value, const char *file, int line,
             char *err, size_t errlen) MDMD_MUSTCHECK;
/* Fills derived defaults (ca_dir, URLs, names) and cross-checks keys. */
int conf_finish(struct conf *cf, char *err, size_t errlen) MDMD_MUSTCHECK;

/* The table's keys, NULL-terminated, for the example-file test. */
const char *const *conf_keys(void);

#endif
