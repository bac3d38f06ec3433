#!/usr/bin/env python3
"""Helpers for bench/bench_inspect.sh (never imports project code).

  lib.py mkpe SIZE_MIB OUT       write an unsigned PE32+ with one big section
                                 of random bytes (SIZE_MIB MiB of raw data)
  lib.py floor FILE              one read of FILE feeding SHA-256, SHA-1 and a
                                 second SHA-256 (the same digest work signwatch
                                 does: Authenticode sha256 + file sha1 + sha256)
  lib.py times TAG JSON...       print medians/min/max from hyperfine --export-json
  lib.py run OUT.json REPS WARMUP NAME CMD [NAME CMD]...
                                 time shell commands in INTERLEAVED rounds
                                 (round k runs every command once, in rotating
                                 order), so drift on a shared machine hits all
                                 peers alike; records wall time and the
                                 child's user+sys CPU time (os.wait4) per run;
                                 appends to OUT.json and prints medians
  lib.py ratio OUT.json A B      median(A)/median(B), wall and CPU
  lib.py rate OUT.json NAME N    N / median(NAME) items per second
  lib.py rss REPS TIME CMD       median "Maximum resident set size" (KiB) of
                                 CMD under TIME -v (GNU time); TIME "-" uses
                                 os.wait4's ru_maxrss instead
"""
import hashlib
import json
import os
import statistics
import struct
import subprocess
import sys
import time

CHUNK = 256 << 10


def mkpe(size_mib, out):
    file_align, sect_align = 0x200, 0x1000
    raw = size_mib << 20
    hdr_size = 0x200
    # DOS header: MZ, e_lfanew at 0x3c
    dos = bytearray(0x40)
    dos[0:2] = b"MZ"
    struct.pack_into("<I", dos, 0x3C, 0x40)
    coff = struct.pack("<HHIIIHH", 0x8664, 1, 0, 0, 0, 240, 0x0022)
    vsize = raw
    size_image = sect_align + ((vsize + sect_align - 1) // sect_align) * sect_align
    opt = struct.pack(
        "<HBBIIIII",
        0x20B, 14, 0,            # magic PE32+, linker version
        raw, 0, 0,               # SizeOfCode, SizeOfInitializedData, SizeOfUninitializedData
        0x1000, 0x1000,          # AddressOfEntryPoint, BaseOfCode
    )
    opt += struct.pack(
        "<QIIHHHHHHIIIIHHQQQQII",
        0x140000000, sect_align, file_align,
        6, 0, 0, 0, 6, 0,        # OS, image, subsystem versions
        0, size_image, hdr_size, 0,   # Win32VersionValue, SizeOfImage, SizeOfHeaders, CheckSum
        3, 0x8160,               # Subsystem CUI, DllCharacteristics
        0x100000, 0x1000, 0x100000, 0x1000,
        0, 16,                   # LoaderFlags, NumberOfRvaAndSizes
    )
    opt += b"\0" * (16 * 8)
    assert len(opt) == 240
    sect = struct.pack("<8sIIIIIIHHI", b".text", vsize, 0x1000, raw, hdr_size,
                       0, 0, 0, 0, 0x60000020)
    head = bytes(dos) + b"PE\0\0" + coff + opt + sect
    head += b"\0" * (hdr_size - len(head))
    with open(out, "wb") as f:
        f.write(head)
        left = raw
        first = True
        while left:
            n = min(left, 8 << 20)
            block = bytearray(os.urandom(n))
            if first:
                block[0] = 0xC3  # ret at the entry point
                first = False
            f.write(block)
            left -= n


def floor(path):
    a, b, c = hashlib.sha256(), hashlib.sha1(), hashlib.sha256()
    buf = bytearray(CHUNK)
    mv = memoryview(buf)
    with open(path, "rb", buffering=0) as f:
        while True:
            n = f.readinto(buf)
            if not n:
                break
            v = mv[:n]
            a.update(v)
            b.update(v)
            c.update(v)
    print(a.hexdigest(), b.hexdigest(), c.hexdigest())


def _load(path):
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError):
        return {}


def _save(path, d):
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(d, f, indent=1)
    os.replace(tmp, path)


def _once(cmd, errlog):
    t0 = time.perf_counter()
    p = subprocess.Popen(["bash", "-c", cmd], stdout=subprocess.DEVNULL, stderr=errlog)
    _, status, ru = os.wait4(p.pid, 0)
    wall = time.perf_counter() - t0
    p.returncode = os.waitstatus_to_exitcode(status)
    return wall, ru.ru_utime + ru.ru_stime, p.returncode


def fmt(t):
    return f"{t * 1000:9.1f} ms" if t < 10 else f"{t:9.2f} s "


def run(out, reps, warmup, pairs):
    names = pairs[0::2]
    cmds = pairs[1::2]
    res = {n: {"cmd": c, "wall": [], "cpu": [], "rc": 0} for n, c in zip(names, cmds)}
    errpath = out + ".stderr.log"
    with open(errpath, "a") as errlog:
        for n, c in zip(names, cmds):
            errlog.write(f"--- {n}: {c}\n")
            errlog.flush()
            for _ in range(warmup):
                _once(c, errlog)
        for k in range(reps):
            order = list(range(len(names)))
            order = order[k % len(order):] + order[:k % len(order)]
            for i in order:
                wall, cpu, rc = _once(cmds[i], errlog)
                r = res[names[i]]
                r["wall"].append(wall)
                r["cpu"].append(cpu)
                if rc:
                    r["rc"] = rc
    d = _load(out)
    d.update(res)
    _save(out, d)
    for n in names:
        r = res[n]
        w, c = r["wall"], r["cpu"]
        flag = f"  (exit status {r['rc']}, see {errpath})" if r["rc"] else ""
        print(f"    {n:<28} median {fmt(statistics.median(w))}  [min {fmt(min(w)).strip()}, "
              f"max {fmt(max(w)).strip()}]  cpu {fmt(statistics.median(c)).strip()}  n={len(w)}{flag}")


def _med(d, name, key):
    if name not in d or not d[name][key]:
        return None
    return statistics.median(d[name][key])


def ratio(out, a, b, label, goal):
    d = _load(out)
    wa, wb = _med(d, a, "wall"), _med(d, b, "wall")
    ca, cb = _med(d, a, "cpu"), _med(d, b, "cpu")
    if None in (wa, wb) or not wb or not cb:
        print(f"    {label}: n/a (a peer was skipped)")
        return
    r = wa / wb
    rc = ca / cb
    rm = min(d[a]["wall"]) / min(d[b]["wall"])
    g = ""
    if goal:
        op, val = goal[:2], float(goal[2:])
        ok = r <= val if op == "<=" else r >= val
        g = f"   goal {op} {val:g}: {'met' if ok else 'NOT met'}"
    print(f"    {label}: {r:6.2f}x median wall  (min-of-runs {rm:.2f}x, cpu {rc:.2f}x){g}")


def rate(out, name, n, unit, goal):
    d = _load(out)
    w, c = _med(d, name, "wall"), _med(d, name, "cpu")
    if w is None:
        print(f"    {name}: n/a (skipped)")
        return None
    g = ""
    if goal:
        ok = n / w >= float(goal)
        g = f"   goal >= {float(goal):g}: {'met' if ok else 'NOT met'}"
    print(f"    {name:<28} {n / w:12.1f} {unit}/s wall  ({n / c:.1f} per cpu-second){g}")


def rss(reps, timebin, cmd):
    vals = []
    for _ in range(reps):
        if timebin == "-":
            p = subprocess.Popen(["bash", "-c", "exec " + cmd], stdout=subprocess.DEVNULL,
                                 stderr=subprocess.DEVNULL)
            _, _, ru = os.wait4(p.pid, 0)
            vals.append(ru.ru_maxrss)
            continue
        p = subprocess.run([timebin, "-v", "bash", "-c", "exec " + cmd], stdout=subprocess.DEVNULL,
                           stderr=subprocess.PIPE, text=True)
        for line in p.stderr.splitlines():
            if "Maximum resident set size" in line:
                vals.append(int(line.split(":")[1]))
    if not vals:
        print("n/a")
        return
    print(int(statistics.median(vals)))


def main(argv):
    if len(argv) < 2:
        print(__doc__, file=sys.stderr)
        return 2
    cmd = argv[1]
    if cmd == "mkpe":
        mkpe(int(argv[2]), argv[3])
    elif cmd == "floor":
        floor(argv[2])
    elif cmd == "run":
        run(argv[2], int(argv[3]), int(argv[4]), argv[5:])
    elif cmd == "rss":
        rss(int(argv[2]), argv[3], " ".join(argv[4:]))
    elif cmd == "ratio":
        ratio(argv[2], argv[3], argv[4], argv[5] if len(argv) > 5 else f"{argv[3]} / {argv[4]}",
              argv[6] if len(argv) > 6 else "")
    elif cmd == "rate":
        rate(argv[2], argv[3], int(argv[4]), argv[5] if len(argv) > 5 else "files",
             argv[6] if len(argv) > 6 else "")

    else:
        print(__doc__, file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
