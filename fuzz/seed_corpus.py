#!/usr/bin/env python3
"""Writes seed inputs for the fuzz targets into fuzz/corpus/<target>/ from the real
iggy-server 0.6.0 fixtures committed in fixtures/iggy-0.6.0/.

Each seed is the start of a real segment: whole messages up to about 3 KiB (found
through the real index), then the same cut in the middle of a message, laid out as
each target reads its input (see the comment at the top of each target). Optional: the
targets also find their way without seeds, more slowly.
"""
import struct
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
FIXTURES = HERE.parent / "fixtures"
LIMIT = 3000


def segments():
    for log in sorted(FIXTURES.glob("iggy-0.6.0/*/streams/*/topics/*/partitions/*/*.log")):
        index = log.with_suffix(".index")
        if not index.exists() or log.stat().st_size == 0:
            continue
        yield int(log.stem), log.read_bytes(), index.read_bytes()


def prefix(log, index):
    """Whole messages up to LIMIT bytes, and their index entries."""
    keep, entries = 0, 0
    for i in range(len(index) // 16):
        (end,) = struct.unpack_from("<I", index, i * 16 + 4)
        if end > LIMIT:
            break
        keep, entries = end, i + 1
    return log[:keep], index[: entries * 16]


def main():
    seeds = {"scan_log": [], "index_verify": [], "segment_files": []}
    for start, log, index in segments():
        whole, idx = prefix(log, index)
        for cut in (whole, log[: len(whole) + 40]):
            seeds["scan_log"].append(bytes([0]) + struct.pack("<QQ", start, 0) + bytes([0]) + cut)
            seeds["index_verify"].append(
                bytes([0]) + struct.pack("<QHH", start, len(cut), 0) + cut + idx
            )
        # Journaled as sealed with the real lengths (flag 0x40, selector 3): the
        # trusted path; and as open with a checkpoint at the second message (selector
        # 0x49): the resumed one.
        for selector in (0x03, 0x49):
            seeds["segment_files"].append(
                bytes([0x40])
                + struct.pack("<QHB", start, len(whole), selector)
                + struct.pack("<QQQQQ", 0, 0, 0, 0, 0)
                + whole
                + idx
            )
        # The same, sealed, with the offsets moved next to u64::MAX (flags 0x80, with
        # 0x01|0x02 to re-forge checksums and offsets, 0x08 for the derived index;
        # selector 0x23: sealed, log cut after its last valid message). The low byte
        # of the start offset (0xff here) is how far below u64::MAX it lies.
        seeds["segment_files"].append(
            bytes([0xCB])
            + struct.pack("<QHB", 0xFF, len(whole), 0x23)
            + struct.pack("<QQQQQ", 0, 0, 0, 0, 0)
            + whole
        )
    if not any(seeds.values()):
        sys.exit(f"no fixtures under {SHARED / 'fixtures'}")
    for target, inputs in seeds.items():
        out = HERE / "corpus" / target
        out.mkdir(parents=True, exist_ok=True)
        for i, data in enumerate(inputs):
            (out / f"fixture-{i:03}").write_bytes(data)
        print(f"{out}: {len(inputs)} seeds")


if __name__ == "__main__":
    main()
