"""firmware_sims: simulated meters and cuffs on a virtual radio, driven through real bleak.

Public interface (for the gateway and the tests)::

    from bleak import BleakClient, BleakScanner
    from firmware_sims.air import VirtualAir

    async with VirtualAir(supervision_timeout_s=2.0) as air:   # inside the running loop
        meter = GlucoseMeter(air, ...)          # firmware_sims.glucose_meter (a peripheral)
        await meter.power_on()                  # advertises on the air
        scanner_cls, client_cls = air.backends()
        device = await BleakScanner.find_device_by_name("...", backend=scanner_cls)
        async with BleakClient(device, backend=client_cls, pair=True) as client:
            ...                                 # plain bleak from here on

- `VirtualAir` (`firmware_sims.air`): the shared virtual link (Bumble `LocalLink` with a
  link-supervision timeout). `air.backends()` -> `(scanner_cls, client_cls)` to pass as
  bleak's `backend=`; `await air.central()` -> the `CentralRadio` behind them (its
  `passkey_agent: async (address) -> int | None` answers passkey entry like a BlueZ agent);
  `air.set_in_range(address, bool)`.
- `firmware_sims.bleak_backend.backend_for(settings, air=None)` -> `BleakBackends(scanner,
  client, radio)` from `settings.ble_transport`: `"platform"` (bleak's own backend: both None),
  `"virtual"` (the in-process `air`), or a Bumble transport spec such as
  `"tcp-client:127.0.0.1:7700"` (joins `homevitals sim run` in another process) or `"usb:0"`.
  Call `await backends.close()` at shutdown.
- Backend behaviour where bleak leaves it to the platform (matches BlueZ): the disconnected
  callback fires on every disconnect; a bonded device is re-encrypted on connect; `pair()` is
  a no-op on an encrypted link and accepts `passkey=`; `unpair()` forgets the bond and
  disconnects; ATT errors raise `bleak.exc.BleakGATTProtocolError`; a link lost during a
  request raises `BleakError`.
- Peripherals: `firmware_sims.peripheral.SimulatedPeripheral` (DIS, Battery, security,
  power) is the base of the device models; `power_on()`, `power_off()` (the central sees the
  disconnect after the supervision timeout), `disconnect_all()`, `displayed_passkey`,
  `passkey_shown` (an Event), `bonded_hosts()`, `forget_bonds()`, `battery_change()`.
- `GlucoseMeter(air, get_model("contour-like"), serial=..., address=..., utc_offset_min=0,
  faults=Faults(...), passkey=123456, now=callable_utc)`: `take_reading(mg_dl, meal=...,
  control_solution=..., at_utc=...)` stores a record; `meter.racp.records` holds the
  `GlucoseRecord`s (codec objects) whose `bytes()` are exactly what goes on the air.
- `BloodPressureCuff(air, get_model("omron-like"), ...)`: `await measure(sys, dia, pulse,
  user_id=1, body_movement=..., irregular_pulse=...)` runs a cuff cycle (ICP then the
  indication); `store(measurement)`; `memory` (with `delivered`); `transfer_done` (an Event set
  when the on-connect transfer ended).
- Scenarios: `firmware_sims.scenario_files.load_scenario(name)` -> `Scenario` (`expected_alerts`,
  `plan(i)`); `firmware_sims.runner.ScenarioRun(scenario, air)` builds and drives the devices;
  `firmware_sims.hci_bridge.open_hci_endpoint(air, port=0)` lets another process join.
"""
