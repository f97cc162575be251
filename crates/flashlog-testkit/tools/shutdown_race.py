#!/usr/bin/env python3
"""Shows that EXT4_IOC_SHUTDOWN is not an instant power cut (needs root).

A child process loops over: create a file, fsync the directory, write 64 KiB,
fdatasync, report "ack N". No flashlog is involved. The parent shuts the file
system down (no log flush) after a random number of acknowledgements, remounts,
and checks every acknowledged file. In about 2 runs in 100 the last
acknowledged file comes back empty: its fdatasync was in flight when the
journal was aborted and returned success anyway.

This is why the power-cut test in tests/it/power_cut.rs holds every append that
returned before the shutdown began to the contract, and lets the ones that
overlapped it go either way.

Usage: sudo python3 shutdown_race.py [runs]    (default 100; takes about a minute)
"""

import fcntl
import os
import random
import struct
import subprocess
import sys
import tempfile

EXT4_IOC_SHUTDOWN = 0x8004587D  # _IOR('X', 125, __u32)
EXT4_GOING_FLAGS_NOLOGFLUSH = 2
BODY = 123


def child(directory):
    os.makedirs(directory, exist_ok=True)
    dir_fd = os.open(directory, os.O_RDONLY)
    n = 0
    while True:
        try:
            fd = os.open(os.path.join(directory, "f%05d" % n),
                         os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            os.fsync(dir_fd)
            os.pwrite(fd, b"\0" * (65536 - BODY), BODY)
            os.pwrite(fd, bytes([n % 251 + 1]) * BODY, 0)
            os.fdatasync(fd)
            os.close(fd)
        except OSError as err:
            print("err", n, err, flush=True)
            return
        print("ack", n, flush=True)
        n += 1


def shutdown(mount):
    fd = os.open(mount, os.O_RDONLY)
    fcntl.ioctl(fd, EXT4_IOC_SHUTDOWN, struct.pack("I", EXT4_GOING_FLAGS_NOLOGFLUSH))
    os.close(fd)


def one_run(device, mount, run):
    subprocess.run(["mount", "-t", "ext4", device, mount], check=True)
    directory = os.path.join(mount, "run%d" % run)
    proc = subprocess.Popen([sys.executable, __file__, "--child", directory],
                            stdout=subprocess.PIPE, text=True)
    cut_after = random.randint(5, 60)
    acked = []
    for line in proc.stdout:
        fields = line.split()
        if fields[0] != "ack":
            break
        acked.append(int(fields[1]))
        if len(acked) == cut_after:
            shutdown(mount)
    proc.kill()
    proc.wait()
    subprocess.run(["umount", mount], check=True)
    subprocess.run(["mount", "-t", "ext4", device, mount], check=True)
    lost = []
    for n in acked:
        try:
            with open(os.path.join(directory, "f%05d" % n), "rb") as f:
                data = f.read()
        except FileNotFoundError:
            lost.append((n, "missing"))
            continue
        if data[:BODY] != bytes([n % 251 + 1]) * BODY:
            lost.append((n, "%d bytes" % len(data)))
    subprocess.run(["umount", mount], check=True)
    if lost:
        print("run %d: %d acknowledged, lost %s" % (run, len(acked), lost), flush=True)
    return bool(lost)


def main():
    runs = int(sys.argv[1]) if len(sys.argv) > 1 else 100
    with tempfile.TemporaryDirectory() as tmp:
        image = os.path.join(tmp, "ext4.img")
        with open(image, "wb") as f:
            f.truncate(256 << 20)
        subprocess.run(["mkfs.ext4", "-q", "-F", image], check=True)
        device = subprocess.run(["losetup", "-f", "--show", image], check=True,
                                capture_output=True, text=True).stdout.strip()
        mount = os.path.join(tmp, "mnt")
        os.mkdir(mount)
        try:
            with_loss = sum(one_run(device, mount, run) for run in range(runs))
        finally:
            subprocess.run(["losetup", "-d", device])
    print("runs that lost an acknowledged file: %d of %d" % (with_loss, runs))


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--child":
        child(sys.argv[2])
    else:
        main()
