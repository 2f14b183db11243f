#!/usr/bin/env python3
# analyze.py OUT: of a probe.sh run, the segment rotations seen before the panic, the
# writes to a segment file after a newer segment's file was created ("late writes"),
# and the .index writes that left more index entries than the .log holds messages
# ("index ahead"; 300-message batches of 152-byte messages), each with its time
# against the last server log line before the panic.
import sys, os, re, datetime
d = sys.argv[1]
lines = [re.sub(r'\x1b\[[0-9;]*m', '', l) for l in open(d + "/server.log", errors="replace")]
st = re.compile(r'^(\d{4}-\d\d-\d\dT[\d:.]+)Z')
def ts(l):
    m = st.match(l)
    return datetime.datetime.fromisoformat(m.group(1)).replace(tzinfo=datetime.timezone.utc).timestamp() if m else None
lo = hi = None
for i, l in enumerate(lines):
    if 'panicked at' in l:
        lo = next((ts(x) for x in reversed(lines[:i]) if ts(x)), None)
        hi = next((ts(x) for x in lines[i+1:] if ts(x)), None)
        where = l.strip()[-60:]
        break
newest = {}; rot = 0; first_late = None; late = []
for line in open(d + "/inotify.log"):
    f = line.split()
    t, kind, p = float(f[0]), f[1], f[2]
    dd, n = os.path.split(p); stem, _, ext = n.partition(".")
    if ext not in ("log", "index") or not stem.isdigit(): continue
    off = int(stem)
    if kind in ("CREATE", "EXIST"):
        if off > newest.get(dd, -1) and kind == "CREATE" and ext == "log": rot += 1
        newest[dd] = max(newest.get(dd, -1), off)
    elif kind == "MODIFY" and off < newest.get(dd, -1):
        late.append((t, n, newest[dd], rot))
ahead = []
for line in open(d + "/inotify.log"):
    f = line.split()
    if f[1] == "MODIFY" and f[2].endswith(".index") and len(f) > 4 and int(f[4]) >= 0 and int(f[3]) // 16 > int(f[4]) // 152:
        ahead.append((float(f[0]), os.path.basename(f[2]), int(f[3]) // 16, int(f[4]) // 152))
print(d.split('/')[-1], "panic" if lo else "no panic", "lo=%s hi=%s" % (lo, hi), "rotations seen:", rot)
for t, n, nw, r in late[:8]:
    print("  late write %s (newest %d, rotation #%d) at %s" % (n, nw, r, "%.3f s before panic line" % (lo - t) if lo else "%.3f" % t))
print("  late writes:", len(late))
for t, n, i, m in ahead[:3]:
    print("  index ahead %s: %d entries, %d messages, %s" % (n, i, m, "%.3f s before panic line" % (lo - t) if lo else "%.3f" % t))
print("  index-ahead events:", len(ahead))
