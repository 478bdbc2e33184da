"""The profiling lab's app: a Python shop that checksums uploads and renders orders. SHOP_CHECKSUM=crc32 is the
fixed version (zlib's checksum instead of a Python loop). Runs with nothing but the standard library."""

import json
import os
import time
import zlib

FAST = os.environ.get("SHOP_CHECKSUM") == "crc32"


def checksum(data):
    if FAST:
        return zlib.crc32(data)
    total = 0
    for b in data:
        total = (total * 31 + b) & 0xFFFFFFFF
    return total


def render(order):
    return json.dumps(order, sort_keys=True).encode()


def handle_upload(size):
    return checksum(bytes(size))


def handle_order(i):
    order = {"id": i, "items": [{"sku": n, "qty": 1} for n in range(30)]}
    return checksum(render(order))


def serve():
    i = 0
    while True:
        handle_upload(300_000)
        for _ in range(100):
            handle_order(i)
        i += 1
        time.sleep(0.03)


if __name__ == "__main__":
    serve()
