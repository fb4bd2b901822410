#!/bin/sh
# Seeds for fuzz_handler_mdm and fuzz_handler_rest (test/fuzz/corpus/handler_*):
# byte 0 the fake store's mode (0: well-formed answers), byte 1 the endpoint
# (see the targets), then the body: real check-in and report messages for the
# fuzz device (XML and binary), deep, wide, shared-object and cyclic plists,
# a report over 8 KB (parsed on the worker), JSON and raw-plist commands,
# profiles plain and CMS-signed, and CMS-signed OTA replies.  Needs python3
# and openssl; run from anywhere.
set -e
top=$(cd "$(dirname "$0")/../.." && pwd)
hp="python3 $top/test/tools/hostile.py"
tmp=$(mktemp -d /tmp/mdmd-seeds.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
m=$top/test/fuzz/corpus/handler_mdm r=$top/test/fuzz/corpus/handler_rest
rm -rf "$m" "$r"
mkdir -p "$m" "$r"
seed() { # dir name route file
    printf "\\000\\$(printf %03o "$3")" > "$1/$2"
    cat "$4" >> "$1/$2"
}
python3 - "$tmp" <<'PY'
import plistlib, sys, os
d = sys.argv[1]
u = "FUZZ-UDID-0001"
msgs = {
  "authenticate": {"MessageType": "Authenticate", "UDID": u, "Topic": "com.apple.mgmt.x",
                   "SerialNumber": "C02FUZZ", "DeviceName": "fuzz", "Model": "iPhone"},
  "tokenupdate": {"MessageType": "TokenUpdate", "UDID": u, "Topic": "com.apple.mgmt.x",
                  "Token": bytes(range(32)), "PushMagic": "magic", "UnlockToken": b"u" * 64},
  "checkout": {"MessageType": "CheckOut", "UDID": u},
  "userauth": {"MessageType": "UserAuthenticate", "UDID": u, "UserID": "A-B", "UserShortName": "a"},
  "gettoken": {"MessageType": "GetToken", "UDID": u, "TokenServiceType": "com.apple.maid"},
  "ddm": {"MessageType": "DeclarativeManagement", "UDID": u, "Endpoint": "tokens"},
  "idle": {"Status": "Idle", "UDID": u},
  "ack": {"Status": "Acknowledged", "UDID": u, "CommandUUID": "FUZZ-CMD-0001",
          "QueryResponses": {"DeviceName": "fuzz", "OSVersion": "17.0", "BatteryLevel": 0.5,
                             "IsSupervised": True}},
  "error": {"Status": "Error", "UDID": u, "CommandUUID": "FUZZ-CMD-0001",
            "ErrorChain": [{"ErrorCode": 12021, "ErrorDomain": "MCMDMErrorDomain",
                            "LocalizedDescription": "x"}]},
  "notnow": {"Status": "NotNow", "UDID": u, "CommandUUID": "FUZZ-CMD-0001"},
  "apps": {"Status": "Acknowledged", "UDID": u, "CommandUUID": "FUZZ-CMD-0002",
           "InstalledApplicationList": [{"Identifier": "com.example.app%d" % i, "Name": "App %d" % i,
                                         "Version": "1.%d" % i, "BundleSize": i * 1000}
                                        for i in range(300)]},
}
for k, v in msgs.items():
    open(os.path.join(d, k + ".xml"), "wb").write(plistlib.dumps(v))
    open(os.path.join(d, k + ".bin"), "wb").write(plistlib.dumps(v, fmt=plistlib.FMT_BINARY))
cmd = {"CommandUUID": "FUZZ-RAW-0001", "Command": {"RequestType": "InstallProfile",
       "Payload": b"<plist/>"}}
open(os.path.join(d, "rawcmd.xml"), "wb").write(plistlib.dumps(cmd))
open(os.path.join(d, "rawcmd.bin"), "wb").write(plistlib.dumps(cmd, fmt=plistlib.FMT_BINARY))
big = {"Command": {"RequestType": "Settings", "Settings": [{"Item": "DeviceName",
       "DeviceName": "n%d" % i} for i in range(2000)]}}
open(os.path.join(d, "rawcmd-big.xml"), "wb").write(plistlib.dumps(big))
prof = {"PayloadType": "Configuration", "PayloadIdentifier": "com.example.fuzz",
        "PayloadUUID": "6C1F7F3A-1111-2222-3333-444455556666", "PayloadVersion": 1,
        "PayloadDisplayName": "Fuzz", "PayloadContent": [{"PayloadType": "com.apple.wifi.managed",
        "PayloadIdentifier": "com.example.fuzz.wifi", "PayloadUUID":
        "6C1F7F3A-1111-2222-3333-444455556667", "PayloadVersion": 1, "SSID_STR": "fuzz"}]}
open(os.path.join(d, "profile.xml"), "wb").write(plistlib.dumps(prof))
prov = {"Name": "Fuzz", "UUID": "6C1F7F3A-1111-2222-3333-444455556668", "AppIDName": "x",
        "ExpirationDate": __import__("datetime").datetime(2030, 1, 1)}
open(os.path.join(d, "prov.xml"), "wb").write(plistlib.dumps(prov))
ota = {"UDID": u, "SERIAL": "C02FUZZ", "PRODUCT": "iPhone10,3", "VERSION": "21A", "CHALLENGE": "FuzzChallenge0123456789abcdefABC"}
open(os.path.join(d, "ota.xml"), "wb").write(plistlib.dumps(ota))
open(os.path.join(d, "cmd.json"), "wb").write(b'{"udids":["%s"],"command":{"RequestType":"DeviceInformation","Queries":["DeviceName"]}}' % u.encode())
open(os.path.join(d, "cmd-async.json"), "wb").write(b'{"filter":"all_enrolled","async":true,"command":{"RequestType":"DeviceLock","PIN":"123456"},"command_uuid":"FUZZ-J-1"}')
open(os.path.join(d, "cmd-urgent.json"), "wb").write(b'{"udids":["%s"],"priority":"high","command":{"RequestType":"EraseDevice"}}' % u.encode())
open(os.path.join(d, "push.json"), "wb").write(b'{"udids":["%s","X-2"]}' % u.encode())
PY
$hp deep-xml 40 "$tmp/deep40.xml" dict=1 UDID=FUZZ-UDID-0001 Status=Acknowledged CommandUUID=C
$hp deep-bin 40 "$tmp/deep40.bin"
$hp deep-bin 40 "$tmp/dictdeep.bin" UDID=FUZZ-UDID-0001 MessageType=Authenticate
$hp wide-bin 30000 "$tmp/wide.bin"
$hp wide-xml 3000 "$tmp/wide.xml"
$hp fanout-bin 14 "$tmp/fan14.bin"
$hp cycle-bin 1 "$tmp/cycle.bin"
$hp deep-json 200 "$tmp/deep.json"
# CMS: a throwaway self-signed signer, as a device's first OTA reply is.
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj /CN=fuzz \
    -keyout "$tmp/k.pem" -out "$tmp/c.pem" -days 3650 2>/dev/null
sign() { openssl cms -sign -nodetach -binary -outform DER -signer "$tmp/c.pem" -inkey "$tmp/k.pem" \
    -in "$1" -out "$2"; }
sign "$tmp/ota.xml" "$tmp/ota.der"
sign "$tmp/deep40.bin" "$tmp/ota-deep.der"
sign "$tmp/cycle.bin" "$tmp/ota-cycle.der"
sign "$tmp/profile.xml" "$tmp/profile.der"
python3 -c "import plistlib,sys; open(sys.argv[1],'wb').write(plistlib.dumps(plistlib.load(open(sys.argv[2],'rb')),fmt=plistlib.FMT_BINARY))" "$tmp/ota.bin" "$tmp/ota.xml"
sign "$tmp/ota.bin" "$tmp/ota-bin.der"
# handler_mdm: route 0 /mdm/checkin, 1 /mdm/connect, 2 /mdm, +4 without a certificate.
for k in authenticate tokenupdate checkout userauth gettoken ddm; do
    seed "$m" "$k.xml" 0 "$tmp/$k.xml"; seed "$m" "$k.bin" 0 "$tmp/$k.bin"
done
for k in idle ack error notnow apps; do
    seed "$m" "$k.xml" 1 "$tmp/$k.xml"; seed "$m" "$k.bin" 1 "$tmp/$k.bin"
done
seed "$m" any-auth.xml 2 "$tmp/authenticate.xml"
seed "$m" any-idle.bin 2 "$tmp/idle.bin"
seed "$m" nocert.xml 4 "$tmp/authenticate.xml"
seed "$m" deep40.xml 1 "$tmp/deep40.xml"
seed "$m" deep40.bin 0 "$tmp/deep40.bin"
seed "$m" dictdeep.bin 0 "$tmp/dictdeep.bin"
seed "$m" wide.bin 1 "$tmp/wide.bin"
seed "$m" wide.xml 1 "$tmp/wide.xml"
seed "$m" fan14.bin 1 "$tmp/fan14.bin"
seed "$m" cycle.bin 0 "$tmp/cycle.bin"
seed "$m" cms.der 0 "$tmp/ota.der"
# handler_rest: 0 commands JSON, 1 raw plist, 2 profiles, 3 provisioning
# profiles, 4 /enroll/ota, 5 /v1/push, 6 raw plist to a filter.
seed "$r" cmd.json 0 "$tmp/cmd.json"
seed "$r" cmd-async.json 0 "$tmp/cmd-async.json"
seed "$r" cmd-urgent.json 0 "$tmp/cmd-urgent.json"
seed "$r" deep.json 0 "$tmp/deep.json"
seed "$r" rawcmd.xml 1 "$tmp/rawcmd.xml"
seed "$r" rawcmd.bin 1 "$tmp/rawcmd.bin"
seed "$r" rawcmd-big.xml 1 "$tmp/rawcmd-big.xml"
seed "$r" rawcmd-deep.bin 1 "$tmp/deep40.bin"
seed "$r" rawcmd-fan.bin 6 "$tmp/fan14.bin"
seed "$r" rawcmd-filter.xml 6 "$tmp/rawcmd.xml"
seed "$r" profile.xml 2 "$tmp/profile.xml"
seed "$r" profile.der 2 "$tmp/profile.der"
seed "$r" profile-wide.bin 2 "$tmp/wide.bin"
seed "$r" prov.xml 3 "$tmp/prov.xml"
seed "$r" prov-cycle.bin 3 "$tmp/cycle.bin"
seed "$r" ota.der 4 "$tmp/ota.der"
seed "$r" ota-bin.der 4 "$tmp/ota-bin.der"
seed "$r" ota-deep.der 4 "$tmp/ota-deep.der"
seed "$r" ota-cycle.der 4 "$tmp/ota-cycle.der"
seed "$r" push.json 5 "$tmp/push.json"
ls "$m" | wc -l; ls "$r" | wc -l
