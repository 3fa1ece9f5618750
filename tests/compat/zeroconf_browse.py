"""Browse `_vege._tcp.local.` with python-zeroconf (the mDNS library Home
Assistant uses) and check that every expected hub resolves as a real hub's
responder would: instance and host name, port, an IPv4 address, the TXT
record of a real hub (keys in a real hub's order, values from the hub's
profile), and that the address found answers HTTP as that hub (Home
Assistant's next step: read the MAC with the `vegehub` client).

    python zeroconf_browse.py --profile fixtures/X.json \
        --hub PORT,MAC,NAME [--hub ...] [--deadline SECS]

Run it only inside a network namespace of its own (the test suite does):
it speaks multicast DNS on every interface there is. Each check prints
`ok NAME` or `FAIL NAME: why` (then exit 1); the last line is
`zeroconf-browse: all N checks passed`.
"""

import argparse
import asyncio
import ipaddress
import json
import sys
from importlib import metadata

from vegehub import VegeHub
from zeroconf import IPVersion, ServiceStateChange
from zeroconf.asyncio import AsyncServiceBrowser, AsyncServiceInfo, AsyncZeroconf

SERVICE = "_vege._tcp.local."
PASSED = []


class CheckFailed(Exception):
    """A check failed; the message says which and why."""


def check(name, cond, why):
    if not cond:
        raise CheckFailed(f"{name}: {why}")
    PASSED.append(name)
    print(f"ok {name}", flush=True)


def expected_txt(profile):
    """The TXT record a real hub (firmware 5.1.1) sends, in its order:
    version type receiver sensors actuators sens_1.. power_mode."""
    sensors = profile.get("sensors", [])
    pairs = [
        ("version", profile["firmware"]),
        ("type", "hub"),
        ("receiver", "/api/vsens/data_in"),
        ("sensors", str(len(sensors))),
        ("actuators", str(profile["actuators"])),
    ]
    pairs += [(f"sens_{i + 1}", s["name"]) for i, s in enumerate(sensors)]
    pairs.append(("power_mode", str(profile.get("power_mode", 0))))
    return [(k.encode(), v.encode()) for k, v in pairs]


def txt_pairs(raw):
    """Key/value pairs of a TXT record's wire form, in order."""
    out, i = [], 0
    while i < len(raw):
        n = raw[i]
        item = raw[i + 1:i + 1 + n]
        i += 1 + n
        k, _, v = item.partition(b"=")
        out.append((k, v))
    return out


async def browse(zc, want, deadline):
    """Names of `_vege._tcp` instances seen, until every wanted one is."""
    seen = set()
    done = asyncio.Event()

    def on_change(zeroconf, service_type, name, state_change):
        if state_change is ServiceStateChange.Added:
            seen.add(name)
            if want <= {n.lower() for n in seen}:
                done.set()

    browser = AsyncServiceBrowser(zc.zeroconf, [SERVICE], handlers=[on_change])
    try:
        await asyncio.wait_for(done.wait(), deadline)
    except asyncio.TimeoutError:
        pass
    finally:
        await browser.async_cancel()
    return seen


async def drive(profile, hubs, deadline):
    want_txt = expected_txt(profile)
    fullnames = {f"{name}.{SERVICE}".lower(): name for _, _, name in hubs}
    aiozc = AsyncZeroconf(ip_version=IPVersion.V4Only)
    try:
        seen = await browse(aiozc, set(fullnames), deadline)
        missing = sorted(n for n in fullnames.values()
                         if f"{n}.{SERVICE}".lower() not in {s.lower() for s in seen})
        check("browse-finds-every-hub", not missing,
              f"not found within {deadline}s: {missing} (seen {sorted(seen)})")
        for port, want_mac, name in hubs:
            info = AsyncServiceInfo(SERVICE, f"{name}.{SERVICE}")
            got = await info.async_request(aiozc.zeroconf, 3000)
            check(f"resolve-{name}", got, "no SRV/TXT/A answer within 3 s")
            check(f"host-{name}", info.server == f"{name}.local.",
                  f"SRV host {info.server!r}, a hub gives {name + '.local.'!r}")
            check(f"port-{name}", info.port == port, f"port {info.port}, the hub serves {port}")
            v4 = [a for a in info.parsed_addresses(IPVersion.V4Only)]
            check(f"ipv4-{name}", v4 and all(ipaddress.ip_address(a).is_loopback for a in v4),
                  f"IPv4 addresses {v4!r} (the simulated hub serves on loopback)")
            pairs = txt_pairs(info.text or b"")
            check(f"txt-{name}", pairs == want_txt,
                  f"TXT {pairs!r}, a real hub sends {want_txt!r}")
            props = info.decoded_properties
            # Home Assistant's next step: VegeHub(discovery_info.host), the
            # hub's MAC. HA gives the address alone (a hub serves on port
            # 80); a simulated hub elsewhere gets its port added.
            hub = VegeHub(v4[0] if info.port == 80 else f"{v4[0]}:{info.port}")
            try:
                await hub.retrieve_mac_address()
                await hub._get_device_info_with_retries()
            finally:
                await hub.close()
            check(f"mac-{name}", hub.mac_address == want_mac
                  and (not name.startswith("Vege_")
                       or name.upper() == f"VEGE_{want_mac[-4:-2]}_{want_mac[-2:]}"),
                  f"the hub at {v4[0]}:{info.port} has MAC {hub.mac_address!r}, "
                  f"instance {name!r}")
            info_hub = hub.info or {}
            check(f"txt-agrees-with-info-{name}",
                  props.get("version") == info_hub.get("version")
                  and props.get("sensors") == str(info_hub.get("num_channels"))
                  and props.get("actuators") == str(info_hub.get("num_actuators")),
                  f"TXT version/sensors/actuators {props.get('version')!r}/"
                  f"{props.get('sensors')!r}/{props.get('actuators')!r}, info/get says "
                  f"{info_hub.get('version')!r}/{info_hub.get('num_channels')!r}/"
                  f"{info_hub.get('num_actuators')!r}")
    finally:
        await aiozc.async_close()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--profile", required=True)
    ap.add_argument("--hub", action="append", required=True, metavar="PORT,MAC,NAME",
                    help="a hub expected: its HTTP port, MAC (any notation), instance name")
    ap.add_argument("--deadline", type=float, default=20.0)
    args = ap.parse_args()
    with open(args.profile, encoding="utf-8") as f:
        profile = json.load(f)
    hubs = []
    for h in args.hub:
        port, mac, name = h.split(",", 2)
        mac = "".join(c for c in mac if c.isalnum()).upper()
        hubs.append((int(port), mac, name))
    print(f"zeroconf {metadata.version('zeroconf')}, vegehub {metadata.version('vegehub')}",
          flush=True)
    try:
        asyncio.run(asyncio.wait_for(drive(profile, hubs, args.deadline), args.deadline + 30))
    except CheckFailed as e:
        print(f"FAIL {e}", flush=True)
        print(f"zeroconf-browse: FAILED after {len(PASSED)} checks", flush=True)
        sys.exit(1)
    except Exception as e:
        print(f"FAIL {type(e).__name__}: {e!r} (after {PASSED[-1:] or 'no check'})",
              flush=True)
        print(f"zeroconf-browse: FAILED after {len(PASSED)} checks", flush=True)
        sys.exit(1)
    print(f"zeroconf-browse: all {len(PASSED)} checks passed", flush=True)


if __name__ == "__main__":
    main()
