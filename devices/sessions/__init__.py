"""Record-transfer sessions as sans-IO state machines (h11 style).

A session is fed what a GATT client saw (`events.Input`) with the time (`events.Instant`) and
answers with the GATT commands to run next and the events it concluded (records to store with
the new cursor, packets to quarantine, the outcome). It does no I/O and reads no clock; the
gateway's bleak adapter moves the bytes.

- `GlucoseSession`: bond, Device Information, clock, then RACP record transfer.
- `BloodPressureSession`: bond, Device Information, clock, then the cuff's indications.
- `clock`: device clock offset and corrected `measured_at`.
"""

from devices.sessions.base import BaseSession, SessionParams
from devices.sessions.blood_pressure import BloodPressureSession
from devices.sessions.cgm import CgmSession
from devices.sessions.events import (
    ClockRead,
    Command,
    DeviceCursor,
    Disconnect,
    Disconnected,
    Event,
    Input,
    Instant,
    Notified,
    OperationFailed,
    Outcome,
    Output,
    Pair,
    PairDone,
    QuarantinedPacket,
    Read,
    ReadDone,
    RecordsReady,
    Sample,
    SamplesReady,
    SessionEnded,
    Subscribe,
    SubscribeDone,
    Write,
    WriteDone,
)
from devices.sessions.gatt import GattInventory
from devices.sessions.glucose import GlucoseSession
from devices.sessions.heart_rate import HeartRateSession
from devices.sessions.pulse_oximeter import PulseOximeterSession
from devices.sessions.vitals import ThermometerSession, WeightScaleSession

__all__ = [
    "BaseSession",
    "BloodPressureSession",
    "CgmSession",
    "ClockRead",
    "Command",
    "DeviceCursor",
    "Disconnect",
    "Disconnected",
    "Event",
    "GattInventory",
    "GlucoseSession",
    "HeartRateSession",
    "Input",
    "Instant",
    "Notified",
    "OperationFailed",
    "Outcome",
    "Output",
    "Pair",
    "PairDone",
    "PulseOximeterSession",
    "QuarantinedPacket",
    "Read",
    "ReadDone",
    "RecordsReady",
    "Sample",
    "SamplesReady",
    "SessionEnded",
    "SessionParams",
    "Subscribe",
    "SubscribeDone",
    "ThermometerSession",
    "WeightScaleSession",
    "Write",
    "WriteDone",
]
