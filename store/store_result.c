/* Command results, packed for history (store.h).  zstd with a raw-content
 * dictionary: a result plist is mostly the same XML every device sends
 * (the plist head, the key names of Apple's answers), which a dictionary
 * turns into back-references, so a DeviceInformation answer of ~1.5 KB keeps
 * ~250 bytes.  The contexts are made once and reused (one per process: the
 * event loop is single-threaded; the worker threads never call these). */
#include "store.h"
#include "../core/log.h"

#include <stdlib.h>
#include <string.h>
#include <zstd.h>

/* Part of the stored format: changing it needs a new STORE_RESULT_MAGIC. */
static const char store_result_dict[] =
    "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
    "<!DOCTYPE plist PUBLIC \"-//Apple//DTD PLIST 1.0//EN\" "
    "\"http://www.apple.com/DTDs/PropertyList-1.0.dtd\">\n"
    "<plist version=\"1.0\">\n<dict>\n"
    "\t<key>ProfileList</key>\n\t<array>\n\t\t<dict>\n"
    "\t\t\t<key>PayloadContent</key>\n\t\t\t<key>PayloadDisplayName</key>\n"
    "\t\t\t<key>PayloadIdentifier</key>\n\t\t\t<key>PayloadUUID</key>\n"
    "\t\t\t<key>PayloadVersion</key>\n\t\t\t<integer>1</integer>\n"
    "\t\t\t<key>PayloadType</key>\n\t\t\t<key>PayloadRemovalDisallowed</key>\n"
    "\t\t\t<key>IsEncrypted</key>\n\t\t\t<key>IsManaged</key>\n"
    "\t\t\t<key>SignerCertificates</key>\n\t\t\t<key>PayloadOrganization</key>\n"
    "\t\t</dict>\n\t</array>\n"
    "\t<key>InstalledApplicationList</key>\n\t<array>\n\t\t<dict>\n"
    "\t\t\t<key>BundleSize</key>\n\t\t\t<key>DynamicSize</key>\n"
    "\t\t\t<key>ExternalVersionIdentifier</key>\n\t\t\t<key>HasUpdateAvailable</key>\n"
    "\t\t\t<key>Identifier</key>\n\t\t\t<string>com.apple.</string>\n"
    "\t\t\t<key>Installing</key>\n\t\t\t<key>IsAppClip</key>\n"
    "\t\t\t<key>IsValidated</key>\n\t\t\t<key>Name</key>\n"
    "\t\t\t<key>ShortVersion</key>\n\t\t\t<key>Version</key>\n"
    "\t\t</dict>\n\t</array>\n"
    "\t<key>CertificateList</key>\n\t<array>\n\t\t<dict>\n"
    "\t\t\t<key>CommonName</key>\n\t\t\t<key>Data</key>\n\t\t\t<data>\n\t\t\tMIIC\n"
    "\t\t\t</data>\n\t\t\t<key>IsIdentity</key>\n\t\t</dict>\n\t</array>\n"
    "\t<key>SecurityInfo</key>\n\t<dict>\n"
    "\t\t<key>HardwareEncryptionCaps</key>\n\t\t<integer>3</integer>\n"
    "\t\t<key>PasscodeCompliant</key>\n\t\t<true/>\n"
    "\t\t<key>PasscodeCompliantWithProfiles</key>\n\t\t<true/>\n"
    "\t\t<key>PasscodePresent</key>\n\t\t<false/>\n"
    "\t</dict>\n"
    "\t<key>ErrorChain</key>\n\t<array>\n\t\t<dict>\n"
    "\t\t\t<key>ErrorCode</key>\n\t\t\t<integer>12021</integer>\n"
    "\t\t\t<key>ErrorDomain</key>\n\t\t\t<string>MCMDMErrorDomain</string>\n"
    "\t\t\t<key>LocalizedDescription</key>\n\t\t\t<key>USEnglishDescription</key>\n"
    "\t\t</dict>\n\t</array>\n"
    "\t<key>CommandUUID</key>\n\t<string>00000000-0000-0000-0000-000000000000</string>\n"
    "\t<key>QueryResponses</key>\n\t<dict>\n"
    "\t\t<key>AvailableDeviceCapacity</key>\n\t\t<real>93.45127868652344</real>\n"
    "\t\t<key>BatteryLevel</key>\n\t\t<real>0.8100000023841858</real>\n"
    "\t\t<key>BluetoothMAC</key>\n\t\t<string>a4:83:e7:00:00:00</string>\n"
    "\t\t<key>BuildVersion</key>\n\t\t<string>21E236</string>\n"
    "\t\t<key>DeviceCapacity</key>\n\t\t<real>119.1666259765625</real>\n"
    "\t\t<key>DeviceName</key>\n\t\t<string>iPhone</string>\n"
    "\t\t<key>IMEI</key>\n\t\t<string>35 000000 000000 0</string>\n"
    "\t\t<key>ICCID</key>\n\t\t<key>MEID</key>\n\t\t<key>PhoneNumber</key>\n"
    "\t\t<key>IsActivationLockEnabled</key>\n\t\t<false/>\n"
    "\t\t<key>IsSupervised</key>\n\t\t<true/>\n"
    "\t\t<key>Model</key>\n\t\t<string>MQ9X3</string>\n"
    "\t\t<key>ModelName</key>\n\t\t<string>iPhone</string>\n"
    "\t\t<key>OSVersion</key>\n\t\t<string>17.4.1</string>\n"
    "\t\t<key>ProductName</key>\n\t\t<string>iPhone15,2</string>\n"
    "\t\t<key>SerialNumber</key>\n\t\t<string>F2LZK1000000</string>\n"
    "\t\t<key>UDID</key>\n\t\t<string>00008030-000000000000000E</string>\n"
    "\t\t<key>WiFiMAC</key>\n\t\t<string>a4:83:e7:00:00:00</string>\n"
    "\t</dict>\n"
    "\t<key>Status</key>\n\t<string>Acknowledged</string>\n"
    "\t<key>UDID</key>\n\t<string>00008030-000000000000000E</string>\n"
    "</dict>\n</plist>\n";

static ZSTD_CCtx *store_result_cctx;
static ZSTD_DCtx *store_result_dctx;
static ZSTD_CDict *store_result_cdict;
static ZSTD_DDict *store_result_ddict;

char *store_result_pack(const void *body, size_t len, size_t *out_len)
{
    if (store_result_cctx == NULL) {
        store_result_cctx = ZSTD_createCCtx();
        store_result_cdict = ZSTD_createCDict(store_result_dict, sizeof(store_result_dict) - 1, 3);
    }
    size_t cap = STORE_RESULT_MAGIC_LEN + ZSTD_compressBound(len);
    char *out = xmalloc(cap);
    size_t n =
        store_result_cctx != NULL && store_result_cdict != NULL
            ? ZSTD_compress_usingCDict(store_result_cctx, out + STORE_RESULT_MAGIC_LEN,
                                       cap - STORE_RESULT_MAGIC_LEN, body, len, store_result_cdict)
            : 0;
    int packed = n != 0 && !ZSTD_isError(n);
    /* Kept as sent when zstd does not make it smaller, unless it begins with
     * the magic (it would read back wrong; a plist never does). */
    int magic = len >= STORE_RESULT_MAGIC_LEN && memcmp(body, STORE_RESULT_MAGIC, 4) == 0;
    if (!packed || (STORE_RESULT_MAGIC_LEN + n >= len && !magic)) {
        memcpy(out, body, len);
        *out_len = len;
        return out;
    }
    memcpy(out, STORE_RESULT_MAGIC, STORE_RESULT_MAGIC_LEN);
    *out_len = STORE_RESULT_MAGIC_LEN + n;
    return out;
}

char *store_result_unpack(const char *val, size_t len, size_t *out_len)
{
    if (len < STORE_RESULT_MAGIC_LEN || memcmp(val, STORE_RESULT_MAGIC, 4) != 0)
        return NULL;
    if (store_result_dctx == NULL) {
        store_result_dctx = ZSTD_createDCtx();
        store_result_ddict = ZSTD_createDDict(store_result_dict, sizeof(store_result_dict) - 1);
    }
    const char *z = val + STORE_RESULT_MAGIC_LEN;
    size_t zlen = len - STORE_RESULT_MAGIC_LEN;
    unsigned long long size = ZSTD_getFrameContentSize(z, zlen);
    /* The store never packs more than a request body (max_body_size). */
    if (store_result_dctx == NULL || store_result_ddict == NULL ||
        size == ZSTD_CONTENTSIZE_UNKNOWN || size == ZSTD_CONTENTSIZE_ERROR || size > (1ULL << 31)) {
        log_warn("event=result_unpack_failed reason=\"bad zstd frame\" bytes=%zu", len);
        return NULL;
    }
    char *out = xmalloc((size_t)size + 1);
    size_t n = ZSTD_decompress_usingDDict(store_result_dctx, out, (size_t)size, z, zlen,
                                          store_result_ddict);
    if (ZSTD_isError(n) || n != size) {
        log_warn("event=result_unpack_failed reason=\"%s\" bytes=%zu",
                 ZSTD_isError(n) ? ZSTD_getErrorName(n) : "short", len);
        free(out);
        return NULL;
    }
    out[n] = '\0';
    *out_len = n;
    return out;
}
