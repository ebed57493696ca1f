"""Bluetooth SIG health codecs: sans-IO, strict by default, with named quirk profiles.

One module per characteristic, named after the spec: `glucose_measurement` (0x2A18),
`glucose_measurement_context` (0x2A34), `glucose_feature` (0x2A51), `racp` (Record Access
Control Point 0x2A52), `blood_pressure_measurement` (0x2A35), `intermediate_cuff_pressure`
(0x2A36), `blood_pressure_feature` (0x2A49), `current_time` (0x2A2B), `date_time` (0x2A08),
`device_information` (0x2A29, 0x2A24, 0x2A25, 0x2A27, 0x2A26, 0x2A28, System ID 0x2A23),
`battery_level` (0x2A19), `heart_rate_measurement` (0x2A37), `plx_spot_check_measurement`
(0x2A5E), `plx_continuous_measurement` (0x2A5F), `temperature_measurement` (0x2A1C),
`weight_measurement` (0x2A9D), `cgm_measurement` (0x2AA7, E2E-CRC), `cgm_feature` (0x2AA8),
`cgm_session_start_time` (0x2AAA), `sfloat` (IEEE 11073
SFLOAT and FLOAT), `profiles` (quirks).

`decode(uuid, data, profile=None)` returns the characteristic's frozen dataclass; every class has
`from_bytes(data, *, profile=None)` and `__bytes__()`, and `bytes(decode(u, b)) == b` for every
valid payload. Any invalid payload raises `DecodeError` and nothing else.
"""

from __future__ import annotations

from devices.codecs.battery_level import BatteryLevel
from devices.codecs.blood_pressure_feature import BloodPressureFeature, BloodPressureFeatureBits
from devices.codecs.blood_pressure_measurement import (
    BloodPressureMeasurement,
    MeasurementStatus,
    PulseRateRange,
)
from devices.codecs.cgm_feature import CgmFeature
from devices.codecs.cgm_measurement import (
    CgmMeasurement,
    CgmMeasurementNotification,
    crc16_mcrf4xx,
    split_records,
)
from devices.codecs.cgm_session_start_time import CgmSessionStartTime
from devices.codecs.current_time import AdjustReason, CurrentTime, DayOfWeek
from devices.codecs.date_time import DateTime
from devices.codecs.device_information import (
    FirmwareRevisionString,
    HardwareRevisionString,
    ManufacturerNameString,
    ModelNumberString,
    SerialNumberString,
    SoftwareRevisionString,
    SystemId,
)
from devices.codecs.errors import DecodeError, EncodeError, UnknownProfileError
from devices.codecs.glucose_feature import GlucoseFeature, GlucoseFeatureBits
from devices.codecs.glucose_measurement import (
    GlucoseMeasurement,
    GlucoseSampleLocation,
    GlucoseType,
    SensorStatus,
)
from devices.codecs.glucose_measurement_context import (
    CarbohydrateId,
    GlucoseMeasurementContext,
    Health,
    Meal,
    MedicationId,
    Tester,
)
from devices.codecs.heart_rate_measurement import HeartRateMeasurement
from devices.codecs.intermediate_cuff_pressure import IntermediateCuffPressure
from devices.codecs.plx_continuous_measurement import PlxContinuousMeasurement
from devices.codecs.plx_spot_check_measurement import PlxSpotCheckMeasurement
from devices.codecs.profiles import PROFILES, Profile, get_profile
from devices.codecs.racp import FilterType, OpCode, Operator, RecordAccessControlPoint, ResponseCode
from devices.codecs.registry import (
    NAMES,
    REGISTRY,
    Characteristic,
    decode,
    register,
    uuid16,
)
from devices.codecs.sfloat import Float, MedFloat16, MedFloat32, SFloat
from devices.codecs.temperature_measurement import TemperatureMeasurement, TemperatureType
from devices.codecs.weight_measurement import WeightMeasurement
from devices.special import Special

CODECS = (
    GlucoseMeasurement,
    GlucoseMeasurementContext,
    GlucoseFeature,
    RecordAccessControlPoint,
    BloodPressureMeasurement,
    IntermediateCuffPressure,
    BloodPressureFeature,
    CurrentTime,
    DateTime,
    ManufacturerNameString,
    ModelNumberString,
    SerialNumberString,
    HardwareRevisionString,
    FirmwareRevisionString,
    SoftwareRevisionString,
    SystemId,
    BatteryLevel,
    HeartRateMeasurement,
    PlxSpotCheckMeasurement,
    PlxContinuousMeasurement,
    TemperatureMeasurement,
    WeightMeasurement,
    CgmMeasurementNotification,
    CgmFeature,
    CgmSessionStartTime,
)
for _codec in CODECS:
    register(_codec.UUID, _codec.__name__, _codec.from_bytes)

__all__ = [
    "CODECS",
    "NAMES",
    "PROFILES",
    "REGISTRY",
    "AdjustReason",
    "BatteryLevel",
    "BloodPressureFeature",
    "BloodPressureFeatureBits",
    "BloodPressureMeasurement",
    "CarbohydrateId",
    "CgmFeature",
    "CgmMeasurement",
    "CgmMeasurementNotification",
    "CgmSessionStartTime",
    "Characteristic",
    "CurrentTime",
    "DateTime",
    "DayOfWeek",
    "DecodeError",
    "EncodeError",
    "FilterType",
    "FirmwareRevisionString",
    "Float",
    "GlucoseFeature",
    "GlucoseFeatureBits",
    "GlucoseMeasurement",
    "GlucoseMeasurementContext",
    "GlucoseSampleLocation",
    "GlucoseType",
    "HardwareRevisionString",
    "Health",
    "HeartRateMeasurement",
    "IntermediateCuffPressure",
    "ManufacturerNameString",
    "Meal",
    "MeasurementStatus",
    "MedFloat16",
    "MedFloat32",
    "MedicationId",
    "ModelNumberString",
    "OpCode",
    "Operator",
    "PlxContinuousMeasurement",
    "PlxSpotCheckMeasurement",
    "Profile",
    "PulseRateRange",
    "RecordAccessControlPoint",
    "ResponseCode",
    "SFloat",
    "SensorStatus",
    "SerialNumberString",
    "SoftwareRevisionString",
    "Special",
    "SystemId",
    "TemperatureMeasurement",
    "TemperatureType",
    "Tester",
    "UnknownProfileError",
    "WeightMeasurement",
    "crc16_mcrf4xx",
    "decode",
    "get_profile",
    "register",
    "split_records",
    "uuid16",
]
