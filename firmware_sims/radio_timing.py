"""Airtime on the virtual radio: connection events, packets per event, ATT MTU, data length (pure).

A real LE link moves data only in connection events, one every connection interval (Core v5.4
Vol 6 Part B 4.5.1: 7.5 ms to 4 s in steps of 1.25 ms), and each event carries a few packets
before the controller closes it (its event length); a packet's payload is at most the
negotiated LL data length (27 octets without the Data Length Extension, up to 251 with it,
Vol 6 Part B 2.4.2.21), and an ATT PDU at most ATT_MTU octets (23 unless both sides exchange a
larger one, Vol 3 Part F 3.2.8). Bumble's link delivers every packet at once, so a 1,000-record
RACP transfer takes milliseconds instead of the tens of seconds a meter needs.

`ConnectionEvents` schedules each packet of one direction of one connection into the first
connection event that still has room, and returns when it is on the air. Both directions are
scheduled independently (a simplification: a real event alternates central and peripheral
packets). Airtime of a packet on the 1M PHY: preamble, access address, header, MIC-less
payload and CRC at 1 us per bit, plus the inter-frame space and the peer's empty
acknowledgement (Vol 6 Part B 2.1 and 4.1.1).

`LinkTiming.realistic` defaults are per device class and are assumptions, not measurements: a
connection interval inside the 30-50 ms window BlueZ asks for by default (Linux
net/bluetooth/hci_core.c, `le_conn_min_interval` 0x0018, `le_conn_max_interval` 0x0028), four
packets per event, and the MTU and data length of a Bluetooth 4.0/4.1 part for meters and cuffs.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from firmware_sims.errors import FirmwareSimsError

CONNECTION_INTERVAL_STEP_MS = 1.25
INTER_FRAME_SPACE_US = 150.0
EMPTY_PDU_US = 80.0  # preamble 1 + access address 4 + header 2 + CRC 3 octets, 1 us per bit
PACKET_OVERHEAD_OCTETS = 10  # the same fields around a data payload


@dataclass(frozen=True, slots=True)
class LinkTiming:
    """The link parameters a device's connections run with."""

    connection_interval_ms: float = 45.0
    packets_per_event: int = 4
    att_mtu: int = 23
    data_length: int = 27  # LL payload octets per packet

    def __post_init__(self) -> None:
        steps = self.connection_interval_ms / CONNECTION_INTERVAL_STEP_MS
        if not 7.5 <= self.connection_interval_ms <= 4000 or abs(steps - round(steps)) > 1e-9:
            raise FirmwareSimsError(
                f"connection_interval_ms must be 7.5..4000 in 1.25 ms steps, "
                f"got {self.connection_interval_ms}"
            )
        if self.packets_per_event < 1:
            raise FirmwareSimsError(f"packets_per_event must be >= 1, got {self.packets_per_event}")
        if not 23 <= self.att_mtu <= 517:
            raise FirmwareSimsError(f"att_mtu must be 23..517, got {self.att_mtu}")
        if not 27 <= self.data_length <= 251:
            raise FirmwareSimsError(f"data_length must be 27..251, got {self.data_length}")

    @property
    def packet_airtime_s(self) -> float:
        """One full data packet, the inter-frame spaces and the empty acknowledgement."""
        data_us = (self.data_length + PACKET_OVERHEAD_OCTETS) * 8.0
        return (data_us + 2 * INTER_FRAME_SPACE_US + EMPTY_PDU_US) / 1e6

    def records_per_second(self, notification_octets: int) -> float:
        """Notifications of this size (ATT value) the link carries per second, one way."""
        att_pdu = 3 + min(notification_octets, self.att_mtu - 3)
        l2cap = att_pdu + 4
        packets = math.ceil(l2cap / self.data_length)
        per_event = self.packets_per_event / packets
        return per_event * 1000.0 / self.connection_interval_ms


# Meters and cuffs: Bluetooth 4.0/4.1 parts (MTU 23, no Data Length Extension).
METER_TIMING = LinkTiming(connection_interval_ms=45.0, packets_per_event=4)
# Wearables that stream: a shorter interval and the Data Length Extension of 4.2+ parts.
WEARABLE_TIMING = LinkTiming(
    connection_interval_ms=30.0, packets_per_event=6, att_mtu=247, data_length=251
)


class ConnectionEvents:
    """When each packet of one direction of a connection goes on the air (see the module
    docstring). `anchor_s` is the first connection event; times are the caller's clock."""

    def __init__(self, timing: LinkTiming, anchor_s: float) -> None:
        self.timing = timing
        self._anchor_s = anchor_s
        self._event = 0  # index of the event being filled
        self._used = 0  # packets already placed in it

    def schedule(self, now_s: float) -> float:
        """Place one packet sent at `now_s`; returns when its transmission ends."""
        interval_s = self.timing.connection_interval_ms / 1000.0
        first_possible = max(0, math.ceil((now_s - self._anchor_s) / interval_s - 1e-9))
        if first_possible > self._event:
            self._event, self._used = first_possible, 0
        if self._used >= self.timing.packets_per_event:
            self._event, self._used = self._event + 1, 0
        self._used += 1
        start = self._anchor_s + self._event * interval_s
        return start + self._used * self.timing.packet_airtime_s
