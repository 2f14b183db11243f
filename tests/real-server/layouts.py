#!/usr/bin/env python3
"""File-level helper for layouts.sh (Iggy 0.6 segment files; stdlib only).

  prep FIXTURE DEST                  copy a fixture's data dir, add offsets/{consumers,groups},
                                     drop a trailing empty segment pair per partition
  rmseg PARTDIR START                delete the segment pair START (.log + .index)
  cutmid PARTDIR START K             remove K whole messages from the middle of segment START,
                                     rewrite its .index (one entry per remaining message)
  idxcheck PARTDIR                   every .index equals the index rebuilt from its .log
  disk DATADIR OUT.json              every message on disk, per partition: offset -> sha256
  compare DISK.json S/T/P POLLFILE   compare a poll --output-file against the disk messages
          [--from N] [--to M] [--extra EXTRA.json]   (offsets N..M only)
  sent PREFIX FROM N OUT.json        the payloads layouts.sh sends (for --extra)
  polled POLLFILE                    offsets served in a poll --output-file, as ranges
  ls PARTDIR                         the segment files with sizes and message ranges
"""
import hashlib, json, os, shutil, struct, sys

HDR = 56


def frames(buf):
    """(offset, start, end, timestamp) of every whole message in a log buffer."""
    pos, out = 0, []
    while pos + HDR <= len(buf):
        off, ts = struct.unpack_from("<QQ", buf, pos + 24)
        hl, pl = struct.unpack_from("<II", buf, pos + 48)
        end = pos + HDR + pl + hl
        if end > len(buf) or (pl == 0 and hl == 0 and off == 0 and ts == 0):
            break
        out.append((off, pos, end, ts))
        pos = end
    return out, pos


def segs(part):
    return sorted(int(f[:-4]) for f in os.listdir(part) if f.endswith(".log"))


def partitions(data):
    out = []
    sroot = os.path.join(data, "streams")
    for s in sorted(os.listdir(sroot), key=int):
        troot = os.path.join(sroot, s, "topics")
        for t in sorted(os.listdir(troot), key=int):
            proot = os.path.join(troot, t, "partitions")
            for p in sorted(os.listdir(proot), key=int):
                out.append((f"{s}/{t}/{p}", os.path.join(proot, p)))
    return out


def name(start, ext):
    return f"{start:020d}.{ext}"


def build_index(buf, start):
    fr, _ = frames(buf)
    return b"".join(struct.pack("<IIQ", off - start, end, ts) for off, _, end, ts in fr)


def cmd_prep(fixture, dest):
    shutil.copytree(fixture, dest)
    for rel, part in partitions(dest):
        for sub in ("consumers", "groups"):
            os.makedirs(os.path.join(part, "offsets", sub), exist_ok=True)
        ss = segs(part)
        if ss:
            last = ss[-1]
            lp, ip = os.path.join(part, name(last, "log")), os.path.join(part, name(last, "index"))
            if os.path.getsize(lp) == 0 and (not os.path.exists(ip) or os.path.getsize(ip) == 0):
                os.remove(lp)
                if os.path.exists(ip):
                    os.remove(ip)
                print(f"prep: {rel}: removed trailing empty pair {last}")


def cmd_rmseg(part, start):
    start = int(start)
    buf = open(os.path.join(part, name(start, "log")), "rb").read()
    fr, _ = frames(buf)
    os.remove(os.path.join(part, name(start, "log")))
    os.remove(os.path.join(part, name(start, "index")))
    print(json.dumps({"removed_segment": start, "gap_first": fr[0][0], "gap_last": fr[-1][0],
                      "messages_removed": len(fr)}))


def cmd_cutmid(part, start, k):
    start, k = int(start), int(k)
    lp, ip = os.path.join(part, name(start, "log")), os.path.join(part, name(start, "index"))
    buf = open(lp, "rb").read()
    fr, used = frames(buf)
    assert used == len(buf), "log has trailing bytes"
    assert open(ip, "rb").read() == build_index(buf, start), "original index differs from rebuilt"
    n = len(fr)
    i0 = n // 2 - k // 2
    i1 = i0 + k
    assert 0 < i0 and i1 < n
    new = b"".join(buf[s:e] for j, (_, s, e, _) in enumerate(fr) if not (i0 <= j < i1))
    with open(lp, "wb") as f:
        f.write(new)
    idx = build_index(new, start)
    with open(ip, "wb") as f:
        f.write(idx)
    print(json.dumps({"segment": start, "messages_before": n, "gap_first": fr[i0][0],
                      "gap_last": fr[i1 - 1][0], "bytes_removed": fr[i1 - 1][2] - fr[i0][1],
                      "log_size": len(new), "index_entries": len(idx) // 16,
                      "last_offset": fr[-1][0]}))


def cmd_idxcheck(part):
    ok = True
    for st in segs(part):
        buf = open(os.path.join(part, name(st, "log")), "rb").read()
        ip = os.path.join(part, name(st, "index"))
        idx = open(ip, "rb").read() if os.path.exists(ip) else None
        fr, used = frames(buf)
        good = idx == build_index(buf, st) and used == len(buf)
        ok &= good
        print(f"{name(st, 'log')}: {len(fr)} messages, log {len(buf)} B (whole messages {used} B), "
              f"index {None if idx is None else len(idx)} B, index==rebuilt: {good}")
    return ok


def disk_messages(part):
    msgs = {}
    for st in segs(part):
        buf = open(os.path.join(part, name(st, "log")), "rb").read()
        fr, _ = frames(buf)
        for off, s, e, _ in fr:
            msgs[off] = hashlib.sha256(buf[s:e]).hexdigest()
    return msgs


def cmd_disk(data, out):
    res = {rel: disk_messages(part) for rel, part in partitions(data)}
    json.dump(res, open(out, "w"))
    for rel, m in res.items():
        ks = sorted(m)
        print(f"{rel}: {len(ks)} messages on disk, offsets {ranges(ks)}")


def ranges(ks):
    if not ks:
        return "none"
    out, a, b = [], ks[0], ks[0]
    for x in ks[1:]:
        if x == b + 1:
            b = x
        else:
            out.append((a, b))
            a = b = x
    out.append((a, b))
    return ", ".join(f"{a}..{b}" if a != b else f"{a}" for a, b in out)


def poll_messages(path):
    if not os.path.exists(path):
        return []
    buf = open(path, "rb").read()
    fr, used = frames(buf)
    return [(off, hashlib.sha256(buf[s:e]).hexdigest(), buf[s + HDR:s + HDR + struct.unpack_from("<I", buf, s + 52)[0]])
            for off, s, e, _ in fr]


def cmd_compare(disk_json, rel, poll, *opts):
    frm, to, extra = None, None, {}
    args = list(opts)
    while args:
        a = args.pop(0)
        if a == "--from":
            frm = int(args.pop(0))
        elif a == "--to":
            to = int(args.pop(0))
        elif a == "--extra":
            extra = {int(k): v for k, v in json.load(open(args.pop(0))).items()}
    want = {int(k): v for k, v in json.load(open(disk_json))[rel].items()}
    want.update({k: ("payload", v) for k, v in extra.items()})
    if frm is not None:
        want = {k: v for k, v in want.items() if k >= frm}
    if to is not None:
        want = {k: v for k, v in want.items() if k <= to}
    got = poll_messages(poll)
    got_offs = [o for o, _, _ in got]
    bad_bytes, extra_offs = [], []
    for o, h, payload in got:
        w = want.get(o)
        if w is None:
            extra_offs.append(o)
        elif isinstance(w, tuple):
            if payload.decode("utf-8", "replace") != w[1]:
                bad_bytes.append(o)
        elif w != h:
            bad_bytes.append(o)
    missing = sorted(set(want) - set(got_offs))
    ordered = got_offs == sorted(got_offs) and len(set(got_offs)) == len(got_offs)
    ok = not missing and not bad_bytes and not extra_offs and ordered
    print(f"{'OK' if ok else 'MISMATCH'}: expected {len(want)} messages ({ranges(sorted(want))}); "
          f"served {len(got)} ({ranges(got_offs) if ordered else 'NOT ascending/unique: ' + str(got_offs[:20])}); "
          f"missing {len(missing)} ({ranges(missing)}); byte/payload mismatches {len(bad_bytes)} "
          f"({ranges(sorted(bad_bytes))}); unexpected offsets {len(extra_offs)} ({ranges(sorted(extra_offs))})")
    return ok


def cmd_sent(prefix, frm, n, out):
    frm, n = int(frm), int(n)
    json.dump({str(frm + i): f"{prefix}{i:05d}" for i in range(n)}, open(out, "w"))


def cmd_polled(poll):
    got = poll_messages(poll)
    print(f"{len(got)} messages, offsets {ranges([o for o, _, _ in got])}")


def cmd_ls(part):
    for st in segs(part):
        lp, ip = os.path.join(part, name(st, "log")), os.path.join(part, name(st, "index"))
        buf = open(lp, "rb").read()
        fr, _ = frames(buf)
        isz = os.path.getsize(ip) if os.path.exists(ip) else None
        print(f"  {name(st, 'log')} {len(buf)} B, .index {isz} B, {len(fr)} messages "
              f"{ranges([f[0] for f in fr])}")


if __name__ == "__main__":
    c, a = sys.argv[1], sys.argv[2:]
    r = globals()["cmd_" + c](*a)
    sys.exit(0 if r is None or r else 1)
