/* mdmsim_cmd.h: what a simulated iPhone answers to each command.  Every key
 * name comes from Apple's schema (mdm/commands/ yaml files, responsekeys), with
 * the types it gives; iOS-only keys, as an iPhone15,2 on 17.5 would send.
 * A little state per device (profiles, apps, passcode) makes ProfileList and
 * friends reflect earlier commands. */
#ifndef MDMSIM_CMD_H
#define MDMSIM_CMD_H

#include <openssl/cms.h>
#include <openssl/err.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "mdmsim_core.h"

/* ---- per-device identifiers, derived from the device number ---- */

static unsigned sim_gidx(const struct sim_dev *d) /* global: --offset + idx */
{
    return d->sim->o.offset + d->idx;
}

static void sim_fmt_serial(const struct sim_dev *d, char out[16])
{
    snprintf(out, 16, "F2L%09u", sim_gidx(d) % 1000000000u);
}

/* 15-digit IMEI: a fixed TAC, 6 digits of the device number, Luhn digit;
 * written the way iOS prints it ("35 304610 000042 3"). */
static void sim_fmt_imei(const struct sim_dev *d, char out[24])
{
    char digits[16];
    int sum = 0;
    snprintf(digits, sizeof(digits), "35304610%06u", sim_gidx(d) % 1000000u);
    for (int i = 0; i < 14; i++) {
        int v = digits[13 - i] - '0';
        if (i % 2 == 0)
            v = v * 2 > 9 ? v * 2 - 9 : v * 2;
        sum += v;
    }
    snprintf(out, 24, "%.2s %.6s %.6s %d", digits, digits + 2, digits + 8, (10 - sum % 10) % 10);
}

static void sim_fmt_meid(const struct sim_dev *d, char out[16]) /* IMEI's first 14 */
{
    snprintf(out, 16, "35304610%06u", sim_gidx(d) % 1000000u);
}

static void sim_fmt_mac(const struct sim_dev *d, int bt, char out[18])
{
    unsigned v = (sim_gidx(d) * 2u + (unsigned)bt) & 0xffffffu;
    snprintf(out, 18, "f0:99:b6:%02x:%02x:%02x", v >> 16, (v >> 8) & 0xff, v & 0xff);
}

static void sim_fmt_name(const struct sim_dev *d, char out[SIM_UDID_MAX + 16])
{
    snprintf(out, SIM_UDID_MAX + 16, "iPhone %s", d->udid);
}

/* ---- DeviceInformation ---- */

struct sim_query;
typedef plist_t sim_query_fn(const struct sim_dev *d, const struct sim_query *q);
struct sim_query {
    const char *key;
    sim_query_fn *fn;
    const char *str; /* value for sim_q_str */
    double num;      /* value for sim_q_real/int/bool */
    int dflt;        /* answered when the command has no Queries */
};

static plist_t sim_q_str(const struct sim_dev *d, const struct sim_query *q)
{
    (void)d;
    return plist_new_string(q->str);
}

static plist_t sim_q_real(const struct sim_dev *d, const struct sim_query *q)
{
    (void)d;
    return plist_new_real(q->num);
}

static plist_t sim_q_int(const struct sim_dev *d, const struct sim_query *q)
{
    (void)d;
    return plist_new_uint((uint64_t)q->num);
}

static plist_t sim_q_bool(const struct sim_dev *d, const struct sim_query *q)
{
    (void)d;
    return plist_new_bool(q->num != 0);
}

static plist_t sim_q_udid(const struct sim_dev *d, const struct sim_query *q)
{
    (void)q;
    return plist_new_string(d->udid);
}

static plist_t sim_q_name(const struct sim_dev *d, const struct sim_query *q)
{
    char b[SIM_UDID_MAX + 16];
    (void)q;
    sim_fmt_name(d, b);
    return plist_new_string(b);
}

static plist_t sim_q_serial(const struct sim_dev *d, const struct sim_query *q)
{
    char b[16];
    (void)q;
    sim_fmt_serial(d, b);
    return plist_new_string(b);
}

static plist_t sim_q_imei(const struct sim_dev *d, const struct sim_query *q)
{
    char b[24];
    (void)q;
    sim_fmt_imei(d, b);
    return plist_new_string(b);
}

static plist_t sim_q_meid(const struct sim_dev *d, const struct sim_query *q)
{
    char b[16];
    (void)q;
    sim_fmt_meid(d, b);
    return plist_new_string(b);
}

static plist_t sim_q_mac(const struct sim_dev *d, const struct sim_query *q)
{
    char b[18];
    sim_fmt_mac(d, q->num != 0, b);
    return plist_new_string(b);
}

static plist_t sim_q_iccid(const struct sim_dev *d, const struct sim_query *q)
{
    char b[32];
    unsigned g = sim_gidx(d);
    (void)q;
    snprintf(b, sizeof(b), "8901 2600 0%03u %04u %04u", g / 100000000u % 1000u, g / 10000u % 10000u,
             g % 10000u);
    return plist_new_string(b);
}

static plist_t sim_q_phone(const struct sim_dev *d, const struct sim_query *q)
{
    char b[32];
    unsigned g = sim_gidx(d);
    (void)q;
    snprintf(b, sizeof(b), "+1 (555) %03u-%04u", g / 10000u % 1000u, g % 10000u);
    return plist_new_string(b);
}

static plist_t sim_q_eas(const struct sim_dev *d, const struct sim_query *q)
{
    static const char alnum[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
    uint8_t h[32];
    char b[27];
    (void)q;
    sim_derive("mdmsim-eas", d->udid, h);
    for (int i = 0; i < 26; i++)
        b[i] = alnum[h[i] % 36];
    b[26] = '\0';
    return plist_new_string(b);
}

/* Capacities are base-10 GB as reals (schema); apps take a little room. */
static plist_t sim_q_avail(const struct sim_dev *d, const struct sim_query *q)
{
    (void)q;
    return plist_new_real(128.0 - 21.37 - (double)(sim_gidx(d) % 70) - 0.25 * d->napps);
}

/* Drains a little per cycle so successive reports differ, as on a phone. */
static plist_t sim_q_battery(const struct sim_dev *d, const struct sim_query *q)
{
    (void)q;
    unsigned pct = 100 - (unsigned)((sim_gidx(d) * 7u + d->cycles) % 81);
    return plist_new_real(pct / 100.0);
}

static plist_t sim_q_backup(const struct sim_dev *d, const struct sim_query *q)
{
    (void)q;
    time_t t = time(NULL) - 86400 - (time_t)(sim_gidx(d) % 3600);
    return plist_new_date((int32_t)(t - SIM_MAC_EPOCH), 0);
}

static plist_t sim_q_access(const struct sim_dev *d, const struct sim_query *q)
{
    static const char *const off[] = {"BoldTextEnabled",
                                      "IncreaseContrastEnabled",
                                      "ReduceMotionEnabled",
                                      "ReduceTransparencyEnabled",
                                      "TouchAccommodationsEnabled",
                                      "VoiceOverEnabled",
                                      "ZoomEnabled"};
    plist_t p = plist_new_dict();
    (void)d;
    (void)q;
    for (size_t i = 0; i < ARRAY_LEN(off); i++)
        sim_pl_bool(p, off[i], 0);
    sim_pl_int(p, "TextSize", 4);
    return p;
}

/* iOS keys of QueryResponses (information.device.yaml) with their types.
 * Keys iOS lacks (macOS, Shared iPad, user channel) are left out, so a query
 * for them is omitted from the answer, as a phone does. */
static const struct sim_query sim_queries[] = {
    {"UDID", sim_q_udid, NULL, 0, 1},
    {"DeviceName", sim_q_name, NULL, 0, 1},
    {"OSVersion", sim_q_str, SIM_OS_VERSION, 0, 1},
    {"BuildVersion", sim_q_str, SIM_BUILD_VERSION, 0, 1},
    {"ModelName", sim_q_str, "iPhone", 0, 1},
    {"Model", sim_q_str, SIM_MODEL, 0, 1},
    {"ModelNumber", sim_q_str, SIM_MODEL, 0, 0},
    {"ProductName", sim_q_str, SIM_PRODUCT, 0, 1},
    {"SerialNumber", sim_q_serial, NULL, 0, 1},
    {"DeviceCapacity", sim_q_real, NULL, 128.0, 1},
    {"AvailableDeviceCapacity", sim_q_avail, NULL, 0, 1},
    {"BatteryLevel", sim_q_battery, NULL, 0, 1},
    {"IMEI", sim_q_imei, NULL, 0, 1},
    {"MEID", sim_q_meid, NULL, 0, 1},
    {"ModemFirmwareVersion", sim_q_str, "1.60.03", 0, 1},
    {"CellularTechnology", sim_q_int, NULL, 3, 1},
    {"WiFiMAC", sim_q_mac, NULL, 0, 1},
    {"BluetoothMAC", sim_q_mac, NULL, 1, 1},
    {"IsSupervised", sim_q_bool, NULL, 0, 1},
    {"IsMultiUser", sim_q_bool, NULL, 0, 1},
    {"IsDeviceLocatorServiceEnabled", sim_q_bool, NULL, 1, 1},
    {"IsActivationLockEnabled", sim_q_bool, NULL, 0, 1},
    {"IsDoNotDisturbInEffect", sim_q_bool, NULL, 0, 1},
    {"IsCloudBackupEnabled", sim_q_bool, NULL, 1, 1},
    {"IsMDMLostModeEnabled", sim_q_bool, NULL, 0, 1},
    {"AwaitingConfiguration", sim_q_bool, NULL, 0, 1},
    {"iTunesStoreAccountIsActive", sim_q_bool, NULL, 1, 1},
    {"LastCloudBackupDate", sim_q_backup, NULL, 0, 1},
    {"EASDeviceIdentifier", sim_q_eas, NULL, 0, 1},
    {"SoftwareUpdateDeviceID", sim_q_str, "D73AP", 0, 1},
    {"TimeZone", sim_q_str, "America/Los_Angeles", 0, 1},
    {"DiagnosticSubmissionEnabled", sim_q_bool, NULL, 0, 1},
    {"AppAnalyticsEnabled", sim_q_bool, NULL, 0, 1},
    {"ICCID", sim_q_iccid, NULL, 0, 1},
    {"PhoneNumber", sim_q_phone, NULL, 0, 1},
    {"CurrentCarrierNetwork", sim_q_str, "T-Mobile", 0, 1},
    {"SubscriberCarrierNetwork", sim_q_str, "T-Mobile", 0, 1},
    {"CarrierSettingsVersion", sim_q_str, "60.0", 0, 1},
    {"CurrentMCC", sim_q_str, "310", 0, 1},
    {"CurrentMNC", sim_q_str, "260", 0, 1},
    {"SubscriberMCC", sim_q_str, "310", 0, 1},
    {"SubscriberMNC", sim_q_str, "260", 0, 1},
    {"DataRoamingEnabled", sim_q_bool, NULL, 0, 1},
    {"VoiceRoamingEnabled", sim_q_bool, NULL, 1, 1},
    {"PersonalHotspotEnabled", sim_q_bool, NULL, 0, 1},
    {"IsNetworkTethered", sim_q_bool, NULL, 0, 1},
    {"IsRoaming", sim_q_bool, NULL, 0, 1},
    {"AccessibilitySettings", sim_q_access, NULL, 0, 0},
};

static const struct sim_query *sim_query_find(const char *key)
{
    for (size_t i = 0; i < ARRAY_LEN(sim_queries); i++)
        if (strcmp(sim_queries[i].key, key) == 0)
            return &sim_queries[i];
    return NULL;
}

static void sim_query_add(const struct sim_dev *d, plist_t qr, const struct sim_query *q)
{
    plist_dict_set_item(qr, q->key, q->fn(d, q));
}

/* DeclarativeManagement: iOS answers at once and syncs afterwards (at the
 * end of this cycle here, mdmsim_ddm.h). */
static enum sim_status sim_cmd_ddm(struct sim_dev *d, plist_t cmd, plist_t resp)
{
    (void)cmd;
    (void)resp;
    d->ddm_pending = 1;
    return SIM_ACK;
}

static enum sim_status sim_cmd_devinfo(struct sim_dev *d, plist_t cmd, plist_t resp)
{
    plist_t qr = plist_new_dict();
    plist_t queries = sim_pl_get(cmd, "Queries", PLIST_ARRAY);
    if (queries == NULL) {
        for (size_t i = 0; i < ARRAY_LEN(sim_queries); i++)
            if (sim_queries[i].dflt)
                sim_query_add(d, qr, &sim_queries[i]);
    } else {
        for (uint32_t i = 0; i < plist_array_get_size(queries); i++) {
            plist_t it = plist_array_get_item(queries, i);
            const struct sim_query *q = NULL;
            if (plist_get_node_type(it) == PLIST_STRING)
                q = sim_query_find(plist_get_string_ptr(it, NULL));
            if (q != NULL)
                sim_query_add(d, qr, q);
        }
    }
    plist_dict_set_item(resp, "QueryResponses", qr);
    return SIM_ACK;
}

static enum sim_status sim_cmd_security(struct sim_dev *d, plist_t cmd, plist_t resp)
{
    plist_t si = plist_new_dict(), ms = plist_new_dict();
    (void)cmd;
    sim_pl_int(si, "HardwareEncryptionCaps", 3);
    sim_pl_bool(si, "PasscodePresent", !d->passcode_cleared);
    sim_pl_bool(si, "PasscodeCompliant", !d->passcode_cleared);
    sim_pl_bool(si, "PasscodeCompliantWithProfiles", !d->passcode_cleared);
    sim_pl_bool(ms, "IsUserEnrollment", 0);
    plist_dict_set_item(si, "ManagementStatus", ms);
    plist_dict_set_item(resp, "SecurityInfo", si);
    return SIM_ACK;
}

/* ---- profiles ---- */

static void sim_uuid_of(const char *label, const char *udid, char out[37])
{
    uint8_t h[32];
    sim_derive(label, udid, h);
    h[6] = (uint8_t)((h[6] & 0x0f) | 0x40); /* looks like a v4 UUID */
    h[8] = (uint8_t)((h[8] & 0x3f) | 0x80);
    sim_uuid_fmt(h, out);
}

static plist_t sim_profile_content_item(const char *type, const char *id, const char *uuid)
{
    plist_t c = plist_new_dict();
    sim_pl_str(c, "PayloadType", type);
    sim_pl_int(c, "PayloadVersion", 1);
    sim_pl_str(c, "PayloadIdentifier", id);
    sim_pl_str(c, "PayloadUUID", uuid);
    return c;
}

/* The enrollment profile every enrolled phone lists first. */
static plist_t sim_profile_mdm_item(const struct sim_dev *d)
{
    char u1[37], u2[37], u3[37];
    plist_t it = plist_new_dict(), pc = plist_new_array();
    sim_uuid_of("mdmsim-profile", d->udid, u1);
    sim_uuid_of("mdmsim-payload-mdm", d->udid, u2);
    sim_uuid_of("mdmsim-payload-ca", d->udid, u3);
    sim_pl_str(it, "PayloadIdentifier", "mdmsim.enrollment");
    sim_pl_str(it, "PayloadUUID", u1);
    sim_pl_int(it, "PayloadVersion", 1);
    sim_pl_str(it, "PayloadDisplayName", "MDM Enrollment");
    sim_pl_str(it, "PayloadOrganization", "mdmd");
    sim_pl_bool(it, "PayloadRemovalDisallowed", 0);
    sim_pl_bool(it, "HasRemovalPasscode", 0);
    sim_pl_bool(it, "IsEncrypted", 0);
    sim_pl_bool(it, "IsManaged", 0);
    plist_array_append_item(pc,
                            sim_profile_content_item("com.apple.mdm", "mdmsim.enrollment.mdm", u2));
    plist_array_append_item(
        pc, sim_profile_content_item("com.apple.security.root", "mdmsim.enrollment.ca", u3));
    plist_dict_set_item(it, "PayloadContent", pc);
    return it;
}

/* A profile as InstallProfile carries it: a plist, or one wrapped in CMS
 * SignedData (signature not checked: a phone would, the server's tests do).
 * Returns a dict the caller frees, or NULL. */
static plist_t sim_profile_decode(const char *p, uint64_t len)
{
    plist_t pl = NULL;
    if (len > 0 && len < INT32_MAX && (unsigned char)p[0] == 0x30) {
        BIO *b = BIO_new_mem_buf(p, (int)len);
        CMS_ContentInfo *cms = b ? d2i_CMS_bio(b, NULL) : NULL;
        ASN1_OCTET_STRING **c = cms ? CMS_get0_content(cms) : NULL;
        if (c != NULL && *c != NULL)
            plist_from_memory((const char *)ASN1_STRING_get0_data(*c),
                              (uint32_t)ASN1_STRING_length(*c), &pl);
        CMS_ContentInfo_free(cms);
        BIO_free(b);
        ERR_clear_error();
    } else if (len > 0 && len < UINT32_MAX) {
        plist_from_memory(p, (uint32_t)len, &pl);
    }
    if (pl != NULL && plist_get_node_type(pl) != PLIST_DICT) {
        plist_free(pl);
        pl = NULL;
    }
    return pl;
}

static void sim_profile_copy_common(plist_t dst, plist_t src)
{
    static const char *const strs[] = {"PayloadIdentifier", "PayloadUUID", "PayloadDisplayName",
                                       "PayloadOrganization", "PayloadDescription"};
    for (size_t i = 0; i < ARRAY_LEN(strs); i++)
        sim_pl_copy_key(dst, src, strs[i], PLIST_STRING);
    sim_pl_copy_key(dst, src, "PayloadVersion", PLIST_UINT);
}

/* The ProfileList item for an installed profile (keys of profile.list.yaml). */
static plist_t sim_profile_item(plist_t prof)
{
    plist_t it = plist_new_dict();
    plist_t content = sim_pl_get(prof, "PayloadContent", PLIST_ARRAY);
    int encrypted = sim_pl_get(prof, "EncryptedPayloadContent", PLIST_DATA) != NULL;

    sim_profile_copy_common(it, prof);
    sim_pl_copy_key(it, prof, "PayloadRemovalDisallowed", PLIST_BOOLEAN);
    sim_pl_bool(it, "HasRemovalPasscode", 0);
    sim_pl_bool(it, "IsEncrypted", encrypted);
    sim_pl_bool(it, "IsManaged", 1);
    if (content != NULL && !encrypted) {
        plist_t out = plist_new_array();
        for (uint32_t i = 0; i < plist_array_get_size(content); i++) {
            plist_t p = plist_array_get_item(content, i), c = plist_new_dict();
            sim_pl_copy_key(c, p, "PayloadType", PLIST_STRING);
            sim_profile_copy_common(c, p);
            plist_array_append_item(out, c);
        }
        plist_dict_set_item(it, "PayloadContent", out);
    }
    return it;
}

/* Removes the installed profile with this PayloadIdentifier; 1 if found. */
static int sim_profile_remove(struct sim_dev *d, const char *id)
{
    uint32_t n = d->profiles ? plist_array_get_size(d->profiles) : 0;
    for (uint32_t i = 0; i < n; i++) {
        const char *pid = sim_pl_get_str(plist_array_get_item(d->profiles, i), "PayloadIdentifier");
        if (pid != NULL && strcmp(pid, id) == 0) {
            plist_array_remove_item(d->profiles, i);
            return 1;
        }
    }
    return 0;
}

static enum sim_status sim_cmd_install_profile(struct sim_dev *d, plist_t cmd, plist_t resp)
{
    uint64_t len = 0;
    plist_t data = sim_pl_get(cmd, "Payload", PLIST_DATA);
    (void)resp;
    if (data == NULL)
        return SIM_FORMAT;
    const char *p = plist_get_data_ptr(data, &len);
    plist_t prof = sim_profile_decode(p, len);
    const char *id = sim_pl_get_str(prof, "PayloadIdentifier");
    if (id != NULL) { /* reinstalling an identifier replaces it */
        if (d->profiles == NULL)
            d->profiles = plist_new_array();
        sim_profile_remove(d, id);
        plist_array_append_item(d->profiles, sim_profile_item(prof));
    }
    plist_free(prof);
    return SIM_ACK;
}

static enum sim_status sim_cmd_remove_profile(struct sim_dev *d, plist_t cmd, plist_t resp)
{
    const char *id = sim_pl_get_str(cmd, "Identifier");
    (void)resp;
    if (id == NULL)
        return SIM_FORMAT;
    sim_profile_remove(d, id);
    return SIM_ACK;
}

static enum sim_status sim_cmd_profiles(struct sim_dev *d, plist_t cmd, plist_t resp)
{
    plist_t list = plist_new_array();
    uint32_t n = d->profiles ? plist_array_get_size(d->profiles) : 0;
    (void)cmd;
    plist_array_append_item(list, sim_profile_mdm_item(d));
    for (uint32_t i = 0; i < n; i++)
        plist_array_append_item(list, plist_copy(plist_array_get_item(d->profiles, i)));
    plist_dict_set_item(resp, "ProfileList", list);
    return SIM_ACK;
}

/* ---- applications ---- */

static void sim_app_add(struct sim_dev *d, const char *id, const char *name, const char *ver,
                        int managed)
{
    d->apps = xrealloc(d->apps, (d->napps + 1) * sizeof(*d->apps));
    d->apps[d->napps].id = xstrdup(id);
    d->apps[d->napps].name = xstrdup(name);
    d->apps[d->napps].version = xstrdup(ver);
    d->apps[d->napps].managed = managed;
    d->napps++;
}

static void sim_apps_clear(struct sim_dev *d)
{
    for (unsigned i = 0; i < d->napps; i++) {
        free(d->apps[i].id);
        free(d->apps[i].name);
        free(d->apps[i].version);
    }
    free(d->apps);
    d->apps = NULL;
    d->napps = 0;
}

/* Two store apps the user installed before enrolling. */
static void sim_apps_init(struct sim_dev *d)
{
    if (d->apps_init)
        return;
    d->apps_init = 1;
    sim_app_add(d, "com.apple.Pages", "Pages", "14.0", 0);
    sim_app_add(d, "com.google.chrome.ios", "Chrome", "124.0.6367.111", 0);
}

static struct sim_app *sim_app_find(struct sim_dev *d, const char *id)
{
    for (unsigned i = 0; i < d->napps; i++)
        if (strcmp(d->apps[i].id, id) == 0)
            return &d->apps[i];
    return NULL;
}

static plist_t sim_app_item(const struct sim_app *a)
{
    plist_t it = plist_new_dict();
    sim_pl_str(it, "Identifier", a->id);
    sim_pl_str(it, "Name", a->name);
    sim_pl_str(it, "Version", a->version);
    sim_pl_str(it, "ShortVersion", a->version);
    sim_pl_int(it, "ExternalVersionIdentifier", 865000000 + strlen(a->id));
    sim_pl_int(it, "BundleSize", 48000000 + 1000 * strlen(a->name));
    sim_pl_int(it, "DynamicSize", 2600000);
    sim_pl_bool(it, "Installing", 0);
    sim_pl_bool(it, "IsValidated", 0);
    sim_pl_bool(it, "AppStoreVendable", 1);
    sim_pl_bool(it, "DeviceBasedVPP", a->managed);
    sim_pl_bool(it, "BetaApp", 0);
    sim_pl_bool(it, "AdHocCodeSigned", 0);
    sim_pl_bool(it, "HasUpdateAvailable", 0);
    sim_pl_bool(it, "IsAppClip", 0);
    return it;
}

/* Keeps Identifier plus the keys the command's Items names (iOS 14+). */
static plist_t sim_app_filter_keys(plist_t full, plist_t items)
{
    plist_t it = plist_new_dict();
    sim_pl_copy_key(it, full, "Identifier", PLIST_STRING);
    for (uint32_t i = 0; i < plist_array_get_size(items); i++) {
        plist_t k = plist_array_get_item(items, i), v;
        if (plist_get_node_type(k) != PLIST_STRING)
            continue;
        v = plist_dict_get_item(full, plist_get_string_ptr(k, NULL));
        if (v != NULL)
            plist_dict_set_item(it, plist_get_string_ptr(k, NULL), plist_copy(v));
    }
    plist_free(full);
    return it;
}

static int sim_app_wanted(const struct sim_app *a, plist_t ids, int managed_only)
{
    if (managed_only && !a->managed)
        return 0;
    if (ids == NULL)
        return 1;
    for (uint32_t i = 0; i < plist_array_get_size(ids); i++) {
        plist_t v = plist_array_get_item(ids, i);
        if (plist_get_node_type(v) == PLIST_STRING &&
            strcmp(plist_get_string_ptr(v, NULL), a->id) == 0)
            return 1;
    }
    return 0;
}

static enum sim_status sim_cmd_apps(struct sim_dev *d, plist_t cmd, plist_t resp)
{
    plist_t list = plist_new_array(), ids = sim_pl_get(cmd, "Identifiers", PLIST_ARRAY);
    plist_t items = sim_pl_get(cmd, "Items", PLIST_ARRAY), mo;
    uint8_t managed_only = 0;
    if ((mo = sim_pl_get(cmd, "ManagedAppsOnly", PLIST_BOOLEAN)) != NULL)
        plist_get_bool_val(mo, &managed_only);
    sim_apps_init(d);
    for (unsigned i = 0; i < d->napps; i++) {
        if (!sim_app_wanted(&d->apps[i], ids, managed_only))
            continue;
        plist_t it = sim_app_item(&d->apps[i]);
        plist_array_append_item(list, items ? sim_app_filter_keys(it, items) : it);
    }
    plist_dict_set_item(resp, "InstalledApplicationList", list);
    return SIM_ACK;
}

static enum sim_status sim_cmd_install_app(struct sim_dev *d, plist_t cmd, plist_t resp)
{
    char id[128];
    const char *want = sim_pl_get_str(cmd, "Identifier");
    plist_t store = sim_pl_get(cmd, "iTunesStoreID", PLIST_UINT);
    uint64_t sid = 0;
    if (want != NULL) {
        snprintf(id, sizeof(id), "%s", want);
    } else if (store != NULL) { /* the bundle id a store lookup would give */
        plist_get_uint_val(store, &sid);
        snprintf(id, sizeof(id), "com.example.store%llu", (unsigned long long)sid);
    } else if (sim_pl_get_str(cmd, "ManifestURL") != NULL) {
        snprintf(id, sizeof(id), "com.example.enterprise%u", d->napps);
    } else {
        return SIM_FORMAT;
    }
    sim_apps_init(d);
    struct sim_app *a = sim_app_find(d, id);
    if (a != NULL)
        a->managed = 1; /* taking over an installed app */
    else
        sim_app_add(d, id, strrchr(id, '.') ? strrchr(id, '.') + 1 : id, "1.0", 1);
    sim_pl_str(resp, "Identifier", id);
    sim_pl_str(resp, "State", a != NULL ? "Managed" : "Queued");
    return SIM_ACK;
}

/* ---- certificates, lock, passcode, erase ---- */

static plist_t sim_cert_item(const char *cn, int identity, const unsigned char *der, int len)
{
    plist_t it = plist_new_dict();
    sim_pl_str(it, "CommonName", cn);
    sim_pl_bool(it, "IsIdentity", identity);
    sim_pl_data(it, "Data", der, (size_t)len);
    return it;
}

static enum sim_status sim_cmd_certs(struct sim_dev *d, plist_t cmd, plist_t resp)
{
    plist_t list = plist_new_array();
    (void)cmd;
    plist_array_append_item(list, sim_cert_item(d->udid, 1, d->cert_der, d->cert_len));
    plist_array_append_item(list,
                            sim_cert_item(d->sim->ca_cn, 0, d->sim->ca_der, d->sim->ca_der_len));
    plist_dict_set_item(resp, "CertificateList", list);
    return SIM_ACK;
}

static enum sim_status sim_cmd_lock(struct sim_dev *d, plist_t cmd, plist_t resp)
{
    /* MessageResult only "if the command includes a message or phone number" */
    if (sim_pl_get_str(cmd, "Message") != NULL || sim_pl_get_str(cmd, "PhoneNumber") != NULL)
        sim_pl_str(resp, "MessageResult", d->passcode_cleared ? "NoPasscodeSet" : "Success");
    return SIM_ACK;
}

static enum sim_status sim_cmd_clear_passcode(struct sim_dev *d, plist_t cmd, plist_t resp)
{
    (void)resp;
    if (sim_pl_get(cmd, "UnlockToken", PLIST_DATA) == NULL)
        return SIM_FORMAT;
    d->passcode_cleared = 1;
    return SIM_ACK;
}

static enum sim_status sim_cmd_ack(struct sim_dev *d, plist_t cmd, plist_t resp)
{
    (void)d;
    (void)cmd;
    (void)resp;
    return SIM_ACK;
}

/* The simulated phone keeps its enrollment (tests go on using it) but
 * loses what an erase would: installed profiles, apps, the passcode. */
static enum sim_status sim_cmd_erase(struct sim_dev *d, plist_t cmd, plist_t resp)
{
    (void)cmd;
    (void)resp;
    plist_free(d->profiles);
    d->profiles = NULL;
    sim_apps_clear(d);
    d->apps_init = 1;
    d->passcode_cleared = 1;
    return SIM_ACK;
}

/* What iOS answers when the profile installs: Acknowledged, no result keys. */
static enum sim_status sim_cmd_install_pp(struct sim_dev *d, plist_t cmd, plist_t resp)
{
    (void)d;
    (void)resp;
    return sim_pl_get(cmd, "ProvisioningProfile", PLIST_DATA) != NULL ? SIM_ACK : SIM_FORMAT;
}

/* ---- dispatch ---- */

typedef enum sim_status sim_cmd_fn(struct sim_dev *d, plist_t cmd, plist_t resp);
static const struct {
    const char *type;
    sim_cmd_fn *fn;
} sim_cmds[] = {
    {"DeclarativeManagement", sim_cmd_ddm},
    {"DeviceInformation", sim_cmd_devinfo},
    {"SecurityInfo", sim_cmd_security},
    {"ProfileList", sim_cmd_profiles},
    {"InstalledApplicationList", sim_cmd_apps},
    {"CertificateList", sim_cmd_certs},
    {"InstallProfile", sim_cmd_install_profile},
    {"RemoveProfile", sim_cmd_remove_profile},
    {"InstallApplication", sim_cmd_install_app},
    {"InstallProvisioningProfile", sim_cmd_install_pp},
    {"DeviceLock", sim_cmd_lock},
    {"ClearPasscode", sim_cmd_clear_passcode},
    {"RestartDevice", sim_cmd_ack},
    {"EraseDevice", sim_cmd_erase},
    {"DeviceConfigured", sim_cmd_ack}, /* Setup Assistant goes on (AwaitingConfiguration) */
};

static void sim_error_chain(plist_t resp, uint64_t code, const char *domain, const char *text)
{
    plist_t chain = plist_new_array(), e = plist_new_dict();
    sim_pl_int(e, "ErrorCode", code);
    sim_pl_str(e, "ErrorDomain", domain);
    sim_pl_str(e, "LocalizedDescription", text);
    sim_pl_str(e, "USEnglishDescription", text);
    plist_array_append_item(chain, e);
    plist_dict_set_item(resp, "ErrorChain", chain);
}

/* Runs command type on d, adding result keys to resp; returns the Status. */
static enum sim_status sim_cmd_run(struct sim_dev *d, const char *type, plist_t cmd, plist_t resp)
{
    char text[SIM_TYPE_MAX + 48];
    for (size_t i = 0; i < ARRAY_LEN(sim_cmds); i++)
        if (strcmp(sim_cmds[i].type, type) == 0)
            return sim_cmds[i].fn(d, cmd, resp);
    /* What iOS answers to a RequestType it does not know. */
    snprintf(text, sizeof(text), "Unknown command \xe2\x80\x9c%s\xe2\x80\x9d.", type);
    sim_error_chain(resp, 12021, "MCMDMErrorDomain", text);
    return SIM_ERROR;
}

static void sim_dev_state_free(struct sim_dev *d)
{
    plist_free(d->profiles);
    d->profiles = NULL;
    sim_apps_clear(d);
}

#endif
