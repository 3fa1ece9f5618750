"""Announce hubs with python-zeroconf the way a hub's own responder does:
`_vege._tcp.local.` instances with host `<instance>.local.`, their TXT
record and addresses, pointing at HTTP ports where simulated hubs serve.

    python zeroconf_register.py HUBS.json [--deadline SECS]

HUBS.json is a list of objects:
  {"instance": "Vege_A6_20",          # any UTF-8, any case
   "type": "_vege._tcp.local.",       # optional: the service type as sent (any case)
   "host": "Vege_A6_20.local.",       # optional: default <instance>.local.
   "port": 8080,
   "addresses": ["127.0.0.2", "::1"],
   "txt": [["version", "5.1.1"], ["power_mode", null], ...]}
TXT pairs are sent in the order given; a null value sends the key alone
(no `=`), as DNS-SD allows; an empty list sends an empty TXT record.

Prints `registered FULLNAME` for each hub, then `ready`; stays up until
stdin closes or the deadline passes, then unregisters every hub (goodbye
packets) and exits 0. Run it only inside a network namespace of its own.
"""

import argparse
import asyncio
import ipaddress
import json
import sys

from zeroconf import IPVersion, ServiceInfo
from zeroconf.asyncio import AsyncZeroconf


def txt_bytes(pairs):
    """The TXT record's wire form, in the given order."""
    out = b""
    for key, value in pairs:
        item = key.encode() if value is None else f"{key}={value}".encode()
        out += bytes([len(item)]) + item
    return out or b"\x00"


def service_info(hub):
    stype = hub.get("type", "_vege._tcp.local.")
    name = f"{hub['instance']}.{stype}"
    info = ServiceInfo(
        stype,
        name,
        port=int(hub["port"]),
        addresses=[ipaddress.ip_address(a).packed for a in hub["addresses"]],
        server=hub.get("host", f"{hub['instance']}.local."),
        # The wire form (bytes), so the order of the keys and a key
        # without `=` go out exactly as listed.
        properties=txt_bytes(hub["txt"]),
    )
    return info


async def stdin_closed():
    loop = asyncio.get_running_loop()
    await loop.run_in_executor(None, sys.stdin.read)


async def main_async(hubs, deadline):
    aiozc = AsyncZeroconf(ip_version=IPVersion.All)
    infos = [service_info(h) for h in hubs]
    try:
        for info in infos:
            # Real hubs' names are unique on their link; no rename on conflict.
            await (await aiozc.async_register_service(info, allow_name_change=False))
            print(f"registered {info.name}", flush=True)
        print("ready", flush=True)
        try:
            await asyncio.wait_for(stdin_closed(), deadline)
        except asyncio.TimeoutError:
            print(f"deadline of {deadline}s passed", file=sys.stderr, flush=True)
    finally:
        await aiozc.async_unregister_all_services()
        await aiozc.async_close()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("hubs", help="JSON file listing the hubs to announce")
    ap.add_argument("--deadline", type=float, default=120.0)
    args = ap.parse_args()
    with open(args.hubs, encoding="utf-8") as f:
        hubs = json.load(f)
    asyncio.run(main_async(hubs, args.deadline))


if __name__ == "__main__":
    main()
