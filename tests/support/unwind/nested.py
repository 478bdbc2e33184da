"""A CPU-bound Python program with known nested functions: its time is in inner, called from outer."""

import sys
import time


def inner(n):
    x = 0
    for i in range(n):
        x += i * i
    return x


def outer(seconds):
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        inner(20000)


if __name__ == "__main__":
    outer(float(sys.argv[1]) if len(sys.argv) > 1 else 5.0)
