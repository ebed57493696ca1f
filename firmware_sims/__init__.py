"""firmware_sims: simulated meters and cuffs on a virtual radio, driven through real bleak.

The hub never imports this package (a production hub ships no simulator).

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
- The bleak backend itself is the `bumble_bleak` package (it serves real dongles as much as
  this air): `bumble_bleak.backend.backend_for(settings, air=air)` picks it from
  `settings.ble_transport` (`"virtual"` means this in-process air).
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
