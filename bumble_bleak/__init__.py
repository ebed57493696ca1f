"""bumble_bleak: bleak's client and scanner API over any Bumble transport.

A USB dongle (`usb:0`), HCI over TCP (`tcp-client:HOST:PORT`, e.g. a `homevitals sim run` in
another process) or an in-process virtual radio: bleak code written for BlueZ runs unchanged on
any of them. The hub (`gateway`) and the simulated devices (`firmware_sims`) both use it; it
imports neither.

Public interface::

    from bumble_bleak.backend import backend_for, radio_backends

    backends = await backend_for(settings)       # settings.ble_transport
    async with BleakClient(address, backend=backends.client, pair=True) as client: ...
    await backends.close()

- `backend_for(settings, air=None)` -> `BleakBackends(scanner, client, radio)` from
  `settings.ble_transport`: `"platform"` (bleak's own backend: both None), `"virtual"` (an
  in-process air: any object whose `central()` coroutine returns a `CentralRadio`, such as
  `firmware_sims.air.VirtualAir`), or a Bumble transport spec.
- `radio_backends(provider)` -> `(scanner_cls, client_cls)` bound to one `CentralRadio`.
- `CentralRadio` (`bumble_bleak.central`): the host's adapter (one bond store, one initiator,
  a `passkey_agent` answering passkey entry like a BlueZ agent).
- Behaviour where bleak leaves it to the platform (matches BlueZ): the disconnected callback
  fires on every disconnect; a bonded device is re-encrypted on connect; `pair()` is a no-op on
  an encrypted link and accepts `passkey=`; `unpair()` forgets the bond and disconnects; ATT
  errors raise `bleak.exc.BleakGATTProtocolError`; a link lost during a request raises
  `BleakError`.
- `bumble_bleak.advertising` (pure): build and parse advertising data.
"""
