"""Drive the public `vegehub` client (the library Home Assistant uses)
against one hub (the simulator) the way Home Assistant does, and call every
public method and property of the library.

    python vegehub_client.py --hub 127.0.0.1:PORT --profile fixtures/X.json

The profile is the simulator's profile file: what the hub must report.
Each check prints `ok NAME` or `FAIL NAME: why` (then exit 1); the last line
is `vegehub-client: all N checks passed`. A check whose call raises fails
with the exception. The whole run has a deadline (--deadline, seconds);
nothing waits on a fixed sleep. Traffic goes only to the hub given and to
this script's own receiver on 127.0.0.1.

Checks named `client-...` verify the library's own local behaviour (no hub
answer can change them); every other check depends on the hub's answers.
"""

import argparse
import asyncio
import contextlib
import json
import socket
import sys
from importlib import metadata

import aiohttp
from aiohttp import web
from vegehub import (
    VegeHub,
    therm200_transform,
    update_data_to_ha_dict,
    update_data_to_latest_dict,
    vh400_transform,
)

ACTUATOR_FIELDS = {"slot", "state", "last_run", "next_window_start",
                   "next_window_end", "cur_ma", "typ_ma", "error"}


class CheckFailed(Exception):
    """A check failed; the message says which and why."""


PASSED = []


def check(name, cond, why):
    """Record check `name`; raise when `cond` is false."""
    if not cond:
        raise CheckFailed(f"{name}: {why}")
    PASSED.append(name)
    print(f"ok {name}", flush=True)


@contextlib.asynccontextmanager
async def calling(name):
    """A library call that belongs to check `name`: raising fails it."""
    try:
        yield
    except CheckFailed:
        raise
    except Exception as e:  # the library raised where a real hub's answer would not
        raise CheckFailed(f"{name}: raised {type(e).__name__}: {e!r}") from e


class Receiver:
    """Home Assistant's webhook, played by an aiohttp server on 127.0.0.1:0:
    it takes the hub's data update posts as HA's handler does (a body is
    required, read as JSON whatever its content type)."""

    def __init__(self):
        self.posts = asyncio.Queue()
        self.runner = None
        self.url = None

    async def start(self):
        app = web.Application()
        app.router.add_post("/api/webhook/{webhook_id}", self.handle)
        self.runner = web.AppRunner(app)
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]
        self.url = f"http://127.0.0.1:{port}/api/webhook/compat-webhook-id"

    async def handle(self, request):
        if not request.body_exists:
            await self.posts.put("no body")
            return web.json_response({"result": "No Body"}, status=400)
        try:
            data = await request.json()
        except ValueError as e:
            await self.posts.put(f"not JSON: {e}")
            return web.json_response({"result": "bad"}, status=400)
        await self.posts.put(data)
        return web.json_response({"result": "OK"})

    async def next_post(self, seconds):
        try:
            return await asyncio.wait_for(self.posts.get(), seconds)
        except asyncio.TimeoutError:
            return None

    async def stop(self):
        if self.runner:
            await self.runner.cleanup()


async def post_json(session, url, body):
    async with session.post(url, json=body) as r:
        return r.status, await r.json(content_type=None)


def closed_loopback_port():
    """A loopback port nothing listens on (bound, then closed)."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def slot_state(states, slot):
    return [a.get("state") for a in states if isinstance(a, dict) and a.get("slot") == slot]


async def drive(hub_addr, profile, post_wait):
    expect_hub = profile["info"]["hub"]
    expect_mac = profile["info"]["wifi"]["mac_addr"].replace(":", "").upper()
    n_sensors = int(expect_hub["num_channels"])
    n_actuators = int(expect_hub["num_actuators"])
    on_ac = bool(expect_hub["is_ac"])
    new_gen = isinstance(profile["config"].get("endpoints"), list)
    base = f"http://{hub_addr}"
    all_sections = {k: [] for k in profile["config"]}

    receiver = Receiver()
    await receiver.start()
    raw = aiohttp.ClientSession()  # reads outside the library, to verify
    made = []  # every VegeHub, closed at the end whatever happened

    def vegehub(*args, **kwargs):
        made.append(VegeHub(*args, **kwargs))
        return made[-1]

    try:
        # --- HA's config flow (after zeroconf or a typed address).
        hub = vegehub(hub_addr)
        check("client-properties-before", hub.ip_address == hub_addr
              and hub.url == base and hub.mac_address == ""
              and hub.unique_id == "" and hub.info is None
              and hub.num_sensors is None and hub.num_actuators is None
              and hub.sw_version is None and hub.is_ac is None,
              "a fresh VegeHub should know only its address")

        async with calling("retrieve_mac_address"):
            got = await hub.retrieve_mac_address()
        check("retrieve_mac_address", got is True and hub.mac_address == expect_mac,
              f"returned {got!r}, mac_address {hub.mac_address!r}, "
              f"the hub's MAC is {expect_mac!r}")

        # The whole config, to put back at the end; and the answer to the
        # request the library sends, which must have its generation's shape.
        async with calling("config-get-as-client-asks"):
            _, original = await post_json(raw, f"{base}/api/config/get", all_sections)
            status, before = await post_json(
                raw, f"{base}/api/config/get", {"hub": [], "api_key": [], "endpoints": []})
        if new_gen:
            shape = isinstance(before, dict) and isinstance(before.get("endpoints"), list)
        else:
            shape = (isinstance(before, dict) and isinstance(before.get("hub"), dict)
                     and isinstance(before.get("api_key"), str)
                     and before.get("endpoints", None) is None)
        check("config-get-as-client-asks", status == 200 and shape
              and before.get("error") == 0,
              f"config/get answered {status} {before!r} "
              f"({'new' if new_gen else 'old'} firmware)")

        # HA sends an empty API key and its webhook URL.
        async with calling("setup"):
            got = await hub.setup("", receiver.url)
        check("setup", got is True, f"setup returned {got!r}")
        async with calling("setup-stored"):
            _, after = await post_json(
                raw, f"{base}/api/config/get", {"hub": [], "api_key": [], "endpoints": []})
        if new_gen:
            ours = [e for e in after.get("endpoints") or []
                    if isinstance(e, dict) and e.get("name") == "HomeAssistant"
                    and (e.get("config") or {}).get("url") == receiver.url]
            check("setup-stored", len(ours) == 1
                  and ours[0]["config"].get("api_key") == ""
                  and ours[0].get("enabled") is True
                  and len(after["endpoints"]) == len(before["endpoints"]) + 1,
                  f"after setup the endpoints are {after.get('endpoints')!r}")
        else:
            h = after.get("hub") or {}
            check("setup-stored", after.get("api_key") == ""
                  and h.get("server_url") == receiver.url
                  and h.get("server_type") == 3,
                  f"after setup api_key={after.get('api_key')!r} "
                  f"hub.server_url={h.get('server_url')!r} "
                  f"hub.server_type={h.get('server_type')!r}")

        # setup() read info/get into hub.info: the accessors HA reads.
        check("info-after-setup", isinstance(hub.info, dict)
              and hub.num_sensors == n_sensors
              and hub.num_actuators == n_actuators
              and hub.sw_version == expect_hub["version"]
              and hub.is_ac is on_ac,
              f"info {hub.info!r}: num_sensors {hub.num_sensors!r}, "
              f"num_actuators {hub.num_actuators!r}, sw_version "
              f"{hub.sw_version!r}, is_ac {hub.is_ac!r}")

        # --- HA asks for an update; the hub posts to the webhook.
        async with calling("request_update"):
            got = await hub.request_update()
        check("request_update", got is True, f"returned {got!r}")
        data = await receiver.next_post(post_wait)
        check("update-posted", isinstance(data, dict),
              f"the webhook got {data!r} within {post_wait}s (a JSON object expected)")
        check("update-mac", data.get("mac") == hub.mac_address,
              f"update mac {data.get('mac')!r}, the hub's is {hub.mac_address!r}")
        # What HA's webhook handler makes of it (entities `<mac>_<slot>`),
        # and the library's slot mapping.
        async with calling("update-as-ha-reads-it"):
            latest = update_data_to_latest_dict(data)
            ha = update_data_to_ha_dict(data, hub.num_sensors, hub.num_actuators, hub.is_ac)
        slots = n_sensors + (0 if on_ac else 1) + n_actuators
        want_latest = {f"{expect_mac}_{s}".lower() for s in range(1, slots + 1)}
        want_ha = {f"analog_{i}" for i in range(n_sensors)}
        want_ha |= {f"actuator_{i}" for i in range(n_actuators)}
        if not on_ac:
            want_ha.add("battery")
        values = [s["value"] for s in profile.get("sensors", [])]
        check("update-as-ha-reads-it", set(latest) == want_latest
              and all(isinstance(v, (int, float)) for v in latest.values())
              and set(ha) == want_ha
              and [ha.get(f"analog_{i}") for i in range(len(values))] == values,
              f"HA entities {sorted(latest)!r} (expected {sorted(want_latest)!r}); "
              f"slots {ha!r} (expected keys {sorted(want_ha)!r}, sensors {values!r})")
        check("client-transforms", vh400_transform(ha["analog_0"]) is not None
              and therm200_transform(ha["analog_0"]) is not None
              and vh400_transform("x") is None and therm200_transform(None) is None,
              "the sensor transforms did not take the hub's value")

        # --- Actuators, as HA's switch platform drives them.
        if n_actuators == 0:
            # The library reads an empty list as "no actuator information".
            try:
                states = await hub.actuator_states()
                check("client-actuator_states-none", False,
                      f"a hub without actuators gave {states!r}")
            except AttributeError:
                check("client-actuator_states-none", True, "")
        else:
            async with calling("actuator_states"):
                states = await hub.actuator_states(retries=1)
                _, status_doc = await post_json_get(raw, f"{base}/api/actuators/status")
            check("actuator_states", isinstance(states, list)
                  and sorted(a.get("slot") for a in states) == list(range(n_actuators))
                  and all(ACTUATOR_FIELDS <= set(a) for a in states)
                  and status_doc.get("error") == "success",
                  f"status lists {states!r}, error {status_doc.get('error')!r}")
            for slot in range(n_actuators):
                async with calling(f"set_actuator-on-{slot}"):
                    got = await hub.set_actuator(1, slot, 30)
                    on = slot_state(await hub.actuator_states(), slot)
                check(f"set_actuator-on-{slot}", got is True and on == [1],
                      f"set_actuator returned {got!r}; slot {slot} state {on!r}")
                async with calling(f"set_actuator-off-{slot}"):
                    got = await hub.set_actuator(0, slot, 0, retries=1)
                    on = slot_state(await hub.actuator_states(), slot)
                check(f"set_actuator-off-{slot}", got is True and on == [0],
                      f"set_actuator returned {got!r}; slot {slot} state {on!r}")

        # --- After a restart HA builds the hub from its stored entry.
        stored = vegehub(hub_addr, hub.mac_address, hub.mac_address, info=hub.info)
        check("client-properties-from-entry", stored.mac_address == expect_mac
              and stored.unique_id == expect_mac and stored.info == hub.info
              and stored.num_sensors == n_sensors and stored.sw_version == hub.sw_version,
              "a VegeHub made from a stored entry does not give back its fields")
        async with calling("retrieve_mac_address-again"):
            got = await stored.retrieve_mac_address(retries=1)
            await stored.close()
        check("retrieve_mac_address-again", got is True and stored.mac_address == expect_mac,
              f"returned {got!r}, mac {stored.mac_address!r}")

        # --- The library on a caller's session, with retries.
        shared = aiohttp.ClientSession()
        try:
            hub2 = vegehub(hub_addr, session=shared)
            async with calling("setup-with-session-and-retries"):
                got = await hub2.setup("VEGEHUB_COMPAT_key", receiver.url, retries=1)
            check("setup-with-session-and-retries", got is True
                  and hub2.mac_address == expect_mac and hub2.num_sensors == n_sensors,
                  f"returned {got!r}, mac {hub2.mac_address!r}")
            await hub2.close()
            check("client-close-leaves-callers-session", not shared.closed,
                  "close() closed a session the caller owns")
        finally:
            await shared.close()

        # --- Put the hub's config back as it was, and verify.
        async with calling("restore"):
            original.pop("error", None)
            status, _ = await post_json(raw, f"{base}/api/config/set", original)
        check("restore", status == 200, f"config/set answered {status}")
        async with calling("restored-equal"):
            _, back = await post_json(raw, f"{base}/api/config/get", all_sections)
            back.pop("error", None)
        check("restored-equal", back == original,
              f"config after restore {back!r} differs from {original!r}")

        await hub.close()
        check("client-close", hub._session is None,
              "close() left the library's own session open")

        # --- A hub that is not there: the library raises ConnectionError.
        gone = vegehub(f"127.0.0.1:{closed_loopback_port()}")
        try:
            await gone.retrieve_mac_address()
            check("client-unreachable", False, "no error from a closed port")
        except ConnectionError:
            check("client-unreachable", True, "")
        finally:
            await gone.close()
    finally:
        for h in made:
            await h.close()
        await raw.close()
        await receiver.stop()


async def post_json_get(session, url):
    async with session.get(url) as r:
        return r.status, await r.json(content_type=None)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--hub", required=True, help="HOST:PORT of the hub")
    ap.add_argument("--profile", required=True, help="the hub's profile .json")
    ap.add_argument("--deadline", type=float, default=60.0)
    ap.add_argument("--post-wait", type=float, default=10.0,
                    help="seconds to wait for the hub's data update")
    args = ap.parse_args()
    with open(args.profile, encoding="utf-8") as f:
        profile = json.load(f)
    print(f"vegehub {metadata.version('vegehub')}, aiohttp {aiohttp.__version__}",
          flush=True)
    try:
        asyncio.run(asyncio.wait_for(drive(args.hub, profile, args.post_wait),
                                     args.deadline))
    except CheckFailed as e:
        print(f"FAIL {e}", flush=True)
        print(f"vegehub-client: FAILED after {len(PASSED)} checks", flush=True)
        sys.exit(1)
    except asyncio.TimeoutError:
        print(f"FAIL deadline: not done within {args.deadline}s", flush=True)
        print(f"vegehub-client: FAILED after {len(PASSED)} checks", flush=True)
        sys.exit(1)
    print(f"vegehub-client: all {len(PASSED)} checks passed", flush=True)


if __name__ == "__main__":
    main()
