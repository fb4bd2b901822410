#!/usr/bin/env python3
"""Writes the seed corpus of fuzz_apns (test/fuzz/corpus/apns/): what APNs
sends back, framed as fuzz_apns.c reads it (a config byte, then records of
[ctl][2-byte length][server bytes]).  HTTP/2 frames and HPACK are built by
hand (no Huffman, no dynamic table), as RFC 7540 and RFC 7541 describe.

    python3 test/fuzz/gen_apns_corpus.py [outdir]
"""
import json
import os
import struct
import sys

DATA, HEADERS, RST_STREAM, SETTINGS, PING, GOAWAY, WINDOW_UPDATE = 0, 1, 3, 4, 6, 7, 8
END_STREAM, ACK, END_HEADERS = 0x1, 0x1, 0x4
NO_ERROR, PROTOCOL_ERROR, INTERNAL_ERROR, REFUSED_STREAM = 0, 1, 2, 7
STATUS_INDEX = {200: 8, 204: 9, 206: 10, 304: 11, 400: 12, 404: 13, 500: 14}


def frame(ftype, flags, stream, payload=b""):
    return struct.pack(">I", len(payload))[1:] + bytes([ftype, flags]) + \
        struct.pack(">I", stream) + payload


def hpack_int(value, prefix_bits, first):
    limit = (1 << prefix_bits) - 1
    if value < limit:
        return bytes([first | value])
    out = [first | limit]
    value -= limit
    while value >= 128:
        out.append(value % 128 + 128)
        value //= 128
    out.append(value)
    return bytes(out)


def hpack_str(s):
    s = s.encode() if isinstance(s, str) else s
    return hpack_int(len(s), 7, 0) + s


def hpack_headers(status, apns_id=None, json_body=False):
    if status in STATUS_INDEX:
        out = hpack_int(STATUS_INDEX[status], 7, 0x80)          # indexed
    else:
        out = hpack_int(8, 4, 0) + hpack_str(str(status))       # literal, name :status
    if apns_id is not None:
        out += b"\x00" + hpack_str("apns-id") + hpack_str(apns_id)
    if json_body:
        out += hpack_int(31, 4, 0) + hpack_str("application/json")  # content-type
    return out


def server_settings():
    # MAX_CONCURRENT_STREAMS 1000, MAX_HEADER_LIST_SIZE 8000.
    return frame(SETTINGS, 0, 0, struct.pack(">HI", 3, 1000) + struct.pack(">HI", 6, 8000))


def settings_ack():
    return frame(SETTINGS, ACK, 0)


def answer(stream, status, reason=None, timestamp=None, apns_id=None):
    if apns_id is None:
        apns_id = "%08X-0000-4000-8000-%012X" % (stream, stream * 7919)
    if reason is None:
        return frame(HEADERS, END_HEADERS | END_STREAM, stream, hpack_headers(status, apns_id))
    body = {"reason": reason}
    if timestamp is not None:
        body["timestamp"] = timestamp
    out = frame(HEADERS, END_HEADERS, stream, hpack_headers(status, apns_id, True))
    return out + frame(DATA, END_STREAM, stream, json.dumps(body, separators=(",", ":")).encode())


def rst(stream, code):
    return frame(RST_STREAM, 0, stream, struct.pack(">I", code))


def goaway(last, code, debug=b""):
    return frame(GOAWAY, 0, 0, struct.pack(">II", last, code) + debug)


def window_update(stream, inc):
    return frame(WINDOW_UPDATE, 0, stream, struct.pack(">I", inc))


def ping(ack=False):
    return frame(PING, ACK if ack else 0, 0, b"\x00\x01\x02\x03\x04\x05\x06\x07")


def record(payload, conn=0, tick=False):
    return bytes([conn | (0x80 if tick else 0)]) + struct.pack(">H", len(payload)) + payload


def seed(npush, records, two_conns=False, resend=False, few_streams=False):
    cfg = (npush - 1) | (0x10 if two_conns else 0) | (0x20 if resend else 0) | \
        (0x40 if few_streams else 0)
    return bytes([cfg]) + b"".join(records)


def hello(conn=0):
    return record(server_settings() + settings_ack(), conn)


SEEDS = {
    "ok": seed(1, [hello(), record(answer(1, 200))]),
    "bad_device_token": seed(1, [hello(), record(answer(1, 400, "BadDeviceToken"))]),
    "unregistered": seed(1, [hello(),
                             record(answer(1, 410, "Unregistered", timestamp=1700000000000))]),
    "too_many_requests": seed(1, [hello(), record(answer(1, 429, "TooManyRequests")),
                                  record(answer(3, 200), tick=True)]),
    "internal_error": seed(1, [hello(), record(answer(1, 500, "InternalServerError")),
                               record(answer(3, 200), tick=True)]),
    "unavailable": seed(2, [hello(), record(answer(1, 503, "ServiceUnavailable") +
                                            answer(3, 200)),
                            record(answer(5, 503, "Shutdown"), tick=True)]),
    "forbidden": seed(1, [hello(), record(answer(1, 403, "BadCertificateEnvironment"))]),
    "goaway": seed(3, [hello(), record(answer(1, 200) + goaway(1, NO_ERROR, b"Shutdown")),
                       record(server_settings() + settings_ack()),
                       record(answer(1, 200) + answer(3, 410, "Unregistered", 1700000000000))]),
    "rst_stream": seed(2, [hello(), record(rst(1, REFUSED_STREAM) + rst(3, INTERNAL_ERROR)),
                           record(answer(5, 200) + answer(7, 200), tick=True)]),
    "mixed": seed(8, [hello(), record(window_update(0, 1 << 20) + ping() +
                                      answer(1, 200) + answer(3, 400, "BadDeviceToken") +
                                      answer(5, 410, "Unregistered", 1600000000000) +
                                      answer(7, 429, "TooManyRequests") +
                                      answer(9, 400, "DeviceTokenNotForTopic") +
                                      window_update(11, 100) + answer(11, 200) +
                                      rst(13, REFUSED_STREAM) + answer(15, 503)),
                      record(ping(ack=True) + answer(17, 200) + answer(19, 200), tick=True)]),
    "two_conns": seed(4, [hello(0), hello(1),
                          record(answer(1, 200) + answer(3, 200), 0),
                          record(answer(1, 200) + goaway(3, NO_ERROR) + answer(3, 500), 1)],
                      two_conns=True, few_streams=True),
    "queued_resend": seed(5, [hello(), record(answer(1, 200) + answer(3, 200)),
                              record(answer(5, 200) + answer(7, 410, "Unregistered", 1)),
                              record(answer(9, 200) + answer(11, 200))],
                          resend=True, few_streams=True),
    "protocol_error": seed(1, [hello(), record(goaway(0, PROTOCOL_ERROR, b"bad frame"))]),
}


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__),
                                                             "corpus", "apns")
    os.makedirs(out, exist_ok=True)
    for name, data in sorted(SEEDS.items()):
        with open(os.path.join(out, name + ".bin"), "wb") as f:
            f.write(data)


if __name__ == "__main__":
    main()
