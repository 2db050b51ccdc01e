#!/usr/bin/python3
"""machine_info.py — describe the machine and the build behind a benchmark run.

Writes JSON with: the CPU (model, vendor, flags, the ISAs granattn can use),
caches and topology (from hwloc's XML when hwloc-ls/lstopo is installed, else
from /sys and lscpu), memory, OS, the compiler and flags of the meson build
(from <build>/meson-info), the library version, the git revision (+ dirty
flag), the ISA the library will choose (GRANATTN_ISA or the best one) and the
date.

Usage:
  tools/machine_info.py [--build build] [--out machine.json]
  tools/machine_info.py --slug        # short machine name, e.g. xeon-2c
  tools/machine_info.py --cpu-id      # "CPU model | logical CPUs | cache sizes" (limits cache key)
"""

import argparse
import glob
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import time
import xml.etree.ElementTree as ET

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# Words dropped from the CPU model when making the machine slug.
SLUG_NOISE = {"intel", "amd", "r", "tm", "processor", "cpu", "core", "genuineintel",
              "authenticamd", "with", "radeon", "graphics", "apu"}


def parse_args(argv):
    p = argparse.ArgumentParser(
        description="Describe the CPU, caches, topology, compiler and library build "
                    "of a granattn benchmark run, as JSON.")
    p.add_argument("--build", default=os.path.join(REPO, "build"),
                   help="meson build directory to describe (default: <repo>/build)")
    p.add_argument("--out", metavar="FILE", help="write the JSON here (default: stdout)")
    p.add_argument("--slug", action="store_true",
                   help="print only the short machine name (CPU model + core count)")
    p.add_argument("--cpu-id", action="store_true",
                   help="print only 'CPU model | logical CPUs | cache sizes' (to match cached limits)")
    return p.parse_args(argv)


# ---------------------------------------------------------------- helpers

def run(cmd, timeout=20):
    """Output of a command, or None when it is missing or fails."""
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return proc.stdout if proc.returncode == 0 else None


def read_text(path):
    try:
        with open(path, encoding="utf-8") as f:
            return f.read().strip()
    except OSError:
        return None


def load_json(path):
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def parse_size(text):
    """'48K' / '2048K' / '32 MiB' -> bytes (None when unparsable)."""
    if not text:
        return None
    m = re.match(r"\s*([0-9.]+)\s*([KMG]?)(i?B)?", text)
    if not m:
        return None
    factor = {"": 1, "K": 1024, "M": 1024 ** 2, "G": 1024 ** 3}[m.group(2)]
    return int(float(m.group(1)) * factor)


def cpulist_count(text):
    """'0-3,8' -> 5."""
    count = 0
    for part in (text or "").split(","):
        part = part.strip()
        if not part:
            continue
        if "-" in part:
            lo, hi = part.split("-")
            count += int(hi) - int(lo) + 1
        else:
            count += 1
    return count


# ---------------------------------------------------------------- CPU

def cpuinfo_fields():
    """First processor block of /proc/cpuinfo as a dict (lower-case keys)."""
    fields = {}
    text = read_text("/proc/cpuinfo") or ""
    for line in text.splitlines():
        if not line.strip():
            if fields:
                break
            continue
        if ":" in line:
            key, value = line.split(":", 1)
            fields.setdefault(key.strip().lower(), value.strip())
    return fields


def lscpu_fields():
    """lscpu as a dict {'Model name': ...}, or {} when unavailable."""
    out = run(["lscpu", "-J"])
    fields = {}
    if out:
        try:
            for item in json.loads(out).get("lscpu", []):
                fields[item["field"].rstrip(":")] = item.get("data")
        except (ValueError, KeyError, AttributeError):
            pass
    return fields


def cpu_model(cpuinfo, lscpu):
    for value in (cpuinfo.get("model name"), lscpu.get("Model name"), platform.processor()):
        if value and value.strip() and value.strip() != "-":
            return " ".join(value.split())
    return platform.machine() or "unknown"


def physical_cores():
    """Distinct (package, core) pairs in /sys; falls back to the CPU count."""
    cores = set()
    for path in glob.glob("/sys/devices/system/cpu/cpu[0-9]*/topology/core_id"):
        cpu_dir = os.path.dirname(path)
        core = read_text(path)
        pkg = read_text(os.path.join(cpu_dir, "physical_package_id"))
        cores.add((pkg, core))
    return len(cores) or os.cpu_count() or 1


def usable_isas(flags, machine):
    """The granattn ISA variants this CPU can run, by its flags (best last)."""
    isas = ["scalar"]
    if machine in ("x86_64", "amd64"):
        if {"avx2", "fma"} <= flags:
            isas.append("avx2")
        if {"avx512f", "avx512bw", "avx512vl", "avx512dq"} <= flags:
            isas.append("avx512")
    elif machine in ("aarch64", "arm64"):
        isas.append("neon")
    return isas


def describe_cpu():
    cpuinfo = cpuinfo_fields()
    lscpu = lscpu_fields()
    flags = set((cpuinfo.get("flags") or cpuinfo.get("features") or lscpu.get("Flags") or "").split())
    machine = platform.machine()
    info = {
        "model": cpu_model(cpuinfo, lscpu),
        "vendor": cpuinfo.get("vendor_id") or lscpu.get("Vendor ID"),
        "architecture": machine,
        "family": cpuinfo.get("cpu family"),
        "model_number": cpuinfo.get("model"),
        "stepping": cpuinfo.get("stepping"),
        "microcode": cpuinfo.get("microcode"),
        "logical_cpus": os.cpu_count(),
        "usable_cpus": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "physical_cores": physical_cores(),
        "threads_per_core": lscpu.get("Thread(s) per core"),
        "sockets": lscpu.get("Socket(s)"),
        "mhz": cpuinfo.get("cpu mhz"),
        "max_mhz": lscpu.get("CPU max MHz"),
        "hypervisor": lscpu.get("Hypervisor vendor"),
        "governor": read_text("/sys/devices/system/cpu/cpu0/cpufreq/scaling_governor"),
        "simd_flags": sorted(f for f in flags if re.match(r"(avx|fma|sse|asimd|sve|amx|neon)", f)),
        "flags": sorted(flags),
        "granattn_isas": usable_isas(flags, machine),
    }
    return info


def machine_slug(model, cores):
    """'Intel(R) Xeon(R) Processor', 2 -> 'xeon-2c'."""
    text = model.lower()
    text = re.sub(r"@.*$", "", text)                 # clock suffix
    text = re.sub(r"\(r\)|\(tm\)", " ", text)
    text = re.sub(r"\b\d+-core\b", " ", text)
    words = [w for w in re.split(r"[^a-z0-9]+", text) if w and w not in SLUG_NOISE]
    words = words[:4] or ["cpu"]
    return "-".join(words + [f"{cores}c"])


# ---------------------------------------------------------------- topology

def hwloc_xml():
    """hwloc's topology XML (no I/O devices), or None when hwloc tools are absent."""
    for tool in ("hwloc-ls", "lstopo-no-graphics", "lstopo"):
        if shutil.which(tool):
            out = run([tool, "--of", "xml", "--no-io"])
            if out:
                return out
    return None


def popcount_cpuset(cpuset):
    """hwloc cpuset string '0x00000003' or '0x0000000f,0xffffffff' -> bits set."""
    bits = 0
    for word in (cpuset or "").split(","):
        word = word.strip()
        if word.startswith("0x"):
            bits += bin(int(word, 16)).count("1")
    return bits


def topology_from_hwloc(xml_text):
    root = ET.fromstring(xml_text)
    counts = {}
    caches = {}
    numa_memory = 0
    for obj in root.iter("object"):
        kind = obj.get("type")
        counts[kind] = counts.get(kind, 0) + 1
        if kind == "NUMANode":
            numa_memory += int(obj.get("local_memory", "0"))
        if kind and kind.endswith("Cache"):
            name = kind[:-5]                       # L1, L1i, L2, L3 ...
            entry = caches.setdefault(name, {
                "level": int(obj.get("depth", "0")),
                "type": {"0": "unified", "1": "data", "2": "instruction"}.get(obj.get("cache_type"), "unknown"),
                "size_bytes": int(obj.get("cache_size", "0")),
                "line_bytes": int(obj.get("cache_linesize", "0")),
                "associativity": int(obj.get("cache_associativity", "0")),
                "cpus_sharing": popcount_cpuset(obj.get("cpuset")),
                "instances": 0,
            })
            entry["instances"] += 1
    return {
        "source": "hwloc",
        "packages": counts.get("Package", 0),
        "numa_nodes": counts.get("NUMANode", 0),
        "numa_memory_bytes": numa_memory,
        "cores": counts.get("Core", 0),
        "pus": counts.get("PU", 0),
        "caches": [dict(name=k, **v) for k, v in sorted(caches.items(), key=lambda kv: (kv[1]["level"], kv[0]))],
    }


def topology_from_sys():
    """Caches from /sys/devices/system/cpu, counts from /sys and lscpu."""
    caches = {}
    for index in sorted(glob.glob("/sys/devices/system/cpu/cpu[0-9]*/cache/index[0-9]*")):
        level = read_text(os.path.join(index, "level"))
        ctype = (read_text(os.path.join(index, "type")) or "unknown").lower()
        shared = read_text(os.path.join(index, "shared_cpu_list"))
        name = f"L{level}" + ("i" if ctype == "instruction" else "")
        entry = caches.setdefault(name, {
            "level": int(level or 0),
            "type": ctype,
            "size_bytes": parse_size(read_text(os.path.join(index, "size"))),
            "line_bytes": int(read_text(os.path.join(index, "coherency_line_size")) or 0),
            "associativity": int(read_text(os.path.join(index, "ways_of_associativity")) or 0),
            "cpus_sharing": cpulist_count(shared),
            "shared_lists": set(),
        })
        entry["shared_lists"].add(shared)
    result = []
    for name, entry in sorted(caches.items(), key=lambda kv: (kv[1]["level"], kv[0])):
        entry["instances"] = len(entry.pop("shared_lists"))
        result.append(dict(name=name, **entry))
    nodes = glob.glob("/sys/devices/system/node/node[0-9]*")
    sockets = str(lscpu_fields().get("Socket(s)") or "")
    return {
        "source": "sysfs+lscpu",
        "packages": int(sockets) if sockets.isdigit() else None,
        "numa_nodes": len(nodes) or 1,
        "cores": physical_cores(),
        "pus": os.cpu_count(),
        "caches": result,
    }


def describe_topology():
    xml_text = hwloc_xml()
    if xml_text:
        try:
            return topology_from_hwloc(xml_text)
        except ET.ParseError:
            pass
    topo = topology_from_sys()
    topo["note"] = "hwloc tools (hwloc-ls/lstopo, Debian package 'hwloc') not found: from /sys"
    return topo


def memory_bytes():
    for line in (read_text("/proc/meminfo") or "").splitlines():
        if line.startswith("MemTotal:"):
            return int(line.split()[1]) * 1024
    return None


def os_release():
    fields = {}
    for line in (read_text("/etc/os-release") or "").splitlines():
        if "=" in line:
            key, value = line.split("=", 1)
            fields[key] = value.strip('"')
    return fields.get("PRETTY_NAME")


# ---------------------------------------------------------------- build

def build_option(options, name):
    for opt in options or []:
        if opt.get("name") == name:
            return opt.get("value")
    return None


def compiler_version(exelist):
    if not exelist:
        return None
    out = run(list(exelist) + ["--version"])
    return out.splitlines()[0] if out else None


def target_flags(targets):
    """Compiler flags of each library target (include paths dropped)."""
    flags = {}
    for target in targets or []:
        for src in target.get("target_sources", []):
            if src.get("language") not in ("c", "cpp") or not src.get("parameters"):
                continue
            kept = [p for p in src["parameters"]
                    if not p.startswith(("-I", "-fdiagnostics-color", "-W"))]
            flags[target["name"] + ":" + src["language"]] = kept
            break
    return flags


def describe_build(build_dir):
    info_dir = os.path.join(build_dir, "meson-info")
    options = load_json(os.path.join(info_dir, "intro-buildoptions.json"))
    targets = load_json(os.path.join(info_dir, "intro-targets.json"))
    project = load_json(os.path.join(info_dir, "intro-projectinfo.json"))
    meson_info = load_json(os.path.join(info_dir, "meson-info.json"))
    if options is None:
        return {"build_dir": build_dir, "note": "no meson introspection data (build not configured?)"}
    exelist = None
    for target in targets or []:
        for src in target.get("target_sources", []):
            if src.get("language") == "c" and src.get("compiler"):
                exelist = src["compiler"]
                break
        if exelist:
            break
    return {
        "build_dir": build_dir,
        "meson_version": (meson_info or {}).get("meson_version", {}).get("full"),
        "project_version": (project or {}).get("version"),
        "buildtype": build_option(options, "buildtype"),
        "optimization": build_option(options, "optimization"),
        "debug": build_option(options, "debug"),
        "b_ndebug": build_option(options, "b_ndebug"),
        "b_lto": build_option(options, "b_lto"),
        "c_std": build_option(options, "c_std"),
        "c_args": build_option(options, "c_args"),
        "cpp_args": build_option(options, "cpp_args"),
        "werror": build_option(options, "werror"),
        "c_compiler": exelist,
        "c_compiler_version": compiler_version(exelist),
        "target_flags": target_flags(targets),
    }


def header_version():
    text = read_text(os.path.join(REPO, "include", "granattn.h")) or ""
    m = re.search(r'#define\s+GA_VERSION_STRING\s+"([^"]+)"', text)
    return m.group(1) if m else None


def describe_git():
    rev = run(["git", "-C", REPO, "rev-parse", "HEAD"])
    status = run(["git", "-C", REPO, "status", "--porcelain", "--untracked-files=no"])
    return {
        "revision": rev.strip() if rev else None,
        # tracked files modified (untracked files such as new results do not count)
        "dirty": bool(status.strip()) if status is not None else None,
    }


def chosen_isa(isas):
    forced = os.environ.get("GRANATTN_ISA")
    if forced:
        return {"isa": forced, "source": "GRANATTN_ISA"}
    return {"isa": isas[-1], "source": "best supported (from CPU flags)"}


def describe(build_dir):
    cpu = describe_cpu()
    return {
        "tool": "machine_info",
        "date": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "hostname": platform.node(),
        "slug": machine_slug(cpu["model"], cpu["physical_cores"]),
        "cpu": cpu,
        "topology": describe_topology(),
        "memory_bytes": memory_bytes(),
        "os": {"kernel": platform.release(), "distribution": os_release()},
        "build": describe_build(build_dir),
        "library": {"version": header_version(), **describe_git()},
        "chosen_isa": chosen_isa(cpu["granattn_isas"]),
        "python": platform.python_version(),
    }


def main(argv):
    args = parse_args(argv)
    if args.slug or args.cpu_id:
        cpuinfo, lscpu = cpuinfo_fields(), lscpu_fields()
        model = cpu_model(cpuinfo, lscpu)
        if args.slug:
            print(machine_slug(model, physical_cores()))
        else:
            # The model string alone is not enough: KVM guests report a
            # generic "Intel(R) Xeon(R) Processor" for hosts whose caches and
            # bandwidth differ, so the cache sizes are part of the key.
            caches = ", ".join(f"{c['name']} {c['size_bytes'] >> 10} KiB"
                               for c in topology_from_sys()["caches"] if c["name"] != "L1i")
            print(f"{model} | {os.cpu_count()} | {caches}")
        return 0
    info = describe(os.path.abspath(args.build))
    text = json.dumps(info, indent=1)
    if args.out:
        with open(args.out, "w", encoding="utf-8") as f:
            f.write(text + "\n")
    else:
        print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
