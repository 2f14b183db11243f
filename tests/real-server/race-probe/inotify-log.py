#!/usr/bin/env python3
# inotify-log.py ROOT OUT: logs create/modify/delete events under ROOT (recursively, with
# the size of the file, and for an .index write the size of its .log stat'ed after it)
# to OUT, one "unix-time kind path size log-size" a line, until killed. (No inotifywait
# needed: ctypes on libc.)
import ctypes, os, struct, sys, time
libc = ctypes.CDLL("libc.so.6", use_errno=True)
root, out = sys.argv[1], open(sys.argv[2], "w", buffering=1)
IN_MODIFY, IN_CLOSE_WRITE, IN_CREATE, IN_DELETE, IN_ISDIR = 0x2, 0x8, 0x100, 0x200, 0x40000000
MASK = IN_MODIFY | IN_CREATE | IN_DELETE
while not os.path.isdir(root): time.sleep(0.01)
fd = libc.inotify_init()
wds = {}
def add(path):
    wd = libc.inotify_add_watch(fd, path.encode(), MASK)
    if wd >= 0:
        wds[wd] = path
        for e in os.scandir(path):
            if e.is_dir(): add(e.path)
            else: out.write("%.6f EXIST %s %d\n" % (time.time(), e.path, e.stat().st_size))
add(root)
while True:
    buf = os.read(fd, 65536)
    now = time.time()
    i = 0
    while i < len(buf):
        wd, mask, cookie, ln = struct.unpack_from("iIII", buf, i)
        name = buf[i+16:i+16+ln].rstrip(b"\0").decode()
        i += 16 + ln
        p = os.path.join(wds.get(wd, "?"), name)
        if mask & IN_CREATE and mask & IN_ISDIR:
            add(p)
        kind = "CREATE" if mask & IN_CREATE else "MODIFY" if mask & IN_MODIFY else "DELETE" if mask & IN_DELETE else hex(mask)
        sz = -1
        if kind == "MODIFY":
            try: sz = os.stat(p).st_size
            except OSError: pass
        lsz = -1
        if kind == "MODIFY" and p.endswith(".index"):
            try: lsz = os.stat(p[:-6] + ".log").st_size
            except OSError: pass
        out.write("%.6f %s %s %d %d\n" % (now, kind, p, sz, lsz))
