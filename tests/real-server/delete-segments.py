#!/usr/bin/env python3
"""Sends iggy's binary-protocol DeleteSegments request (code 503) to iggy-server 0.6.0.

The 0.6.0 CLI cannot send it (`iggy segment delete` panics in its argument parser), so
this speaks the TCP protocol itself: a request is its length (u32, code included), its
code (u32) and its payload; a response is a status (u32), a length (u32) and a payload.
It logs in (code 38: username and password, each a length byte and the bytes, then an
empty version and context) and asks to delete COUNT segments of the partition.

Usage: delete-segments.py PORT USERNAME PASSWORD STREAM TOPIC PARTITION COUNT (numeric
ids). Exits 0 when the server answered both requests with status 0.
"""
import socket
import struct
import sys


def recv_exact(sock, n):
    out = b""
    while len(out) < n:
        chunk = sock.recv(n - len(out))
        if not chunk:
            raise ConnectionError("the server closed the connection")
        out += chunk
    return out


def request(sock, code, payload):
    sock.sendall(struct.pack("<II", len(payload) + 4, code) + payload)
    status, length = struct.unpack("<II", recv_exact(sock, 8))
    recv_exact(sock, length)
    return status


def numeric_id(value):
    return bytes([1, 4]) + struct.pack("<I", value)


def main():
    port, user, password = int(sys.argv[1]), sys.argv[2].encode(), sys.argv[3].encode()
    stream, topic, partition, count = (int(a) for a in sys.argv[4:8])
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        login = bytes([len(user)]) + user + bytes([len(password)]) + password
        status = request(sock, 38, login + struct.pack("<II", 0, 0))
        if status != 0:
            sys.exit(f"login: status {status}")
        payload = numeric_id(stream) + numeric_id(topic) + struct.pack("<II", partition, count)
        status = request(sock, 503, payload)
        if status != 0:
            sys.exit(f"delete segments: status {status}")


if __name__ == "__main__":
    main()
