"""Calls test.Sizes (tests/tests/compression.rs) with grpcio channels that
compress every request (gzip, deflate) and one that does not, and prints what
the server counted, one call a line.

Usage: compression_client.py HOST:PORT

The messages are encoded by hand (Payload: field 1 bytes; Tally: fields 1 and
2 varints), so no generated stubs are needed.
"""

import sys

import grpc

DEADLINE = 20.0


def varint(n):
    out = bytearray()
    while True:
        byte = n & 0x7F
        n >>= 7
        if n:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def payload(data):
    return b"\x0a" + varint(len(data)) + data


def tally(raw):
    """(messages, bytes) from a Tally message."""
    fields = {1: 0, 2: 0}
    at = 0
    while at < len(raw):
        key = raw[at]
        at += 1
        value, shift = 0, 0
        while True:
            byte = raw[at]
            at += 1
            value |= (byte & 0x7F) << shift
            shift += 7
            if not byte & 0x80:
                break
        fields[key >> 3] = value
    return fields[1], fields[2]


def text(n):
    unit = b"steadfast compresses well. "
    return (unit * (n // len(unit) + 1))[:n]


def main():
    address = sys.argv[1]
    for name, compression in [
        ("gzip", grpc.Compression.Gzip),
        ("deflate", grpc.Compression.Deflate),
        ("none", grpc.Compression.NoCompression),
    ]:
        with grpc.insecure_channel(address, compression=compression) as channel:
            one = channel.unary_unary("/test.Sizes/One")
            many = channel.stream_unary("/test.Sizes/Many")
            print(name, "one", *tally(one(payload(text(100_000)), timeout=DEADLINE)))
            sizes = [0, 2, 300_000]
            reply = many(iter([payload(text(n)) for n in sizes]), timeout=DEADLINE)
            print(name, "many", *tally(reply))
            if name == "gzip":
                try:
                    one(payload(text(5 * 1024 * 1024)), timeout=DEADLINE)
                    print(name, "over the limit OK")
                except grpc.RpcError as error:
                    print(name, "over the limit", error.code().name)
                    print(error.details(), file=sys.stderr)
            sys.stdout.flush()


if __name__ == "__main__":
    main()
