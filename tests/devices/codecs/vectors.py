"""Golden vectors: literal payloads and the whole objects they decode to, with their source.

"spec table" means hand-assembled from the field table in docs/device-profiles.md section 2 (itself
from the SIG GATT XML), byte by byte as the comment shows. Public captures name where they came
from.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from devices.codecs import (
    BatteryLevel,
    BloodPressureFeature,
    BloodPressureMeasurement,
    CgmFeature,
    CgmMeasurement,
    CgmMeasurementNotification,
    CgmSessionStartTime,
    CurrentTime,
    DateTime,
    DayOfWeek,
    FilterType,
    FirmwareRevisionString,
    Float,
    GlucoseFeature,
    GlucoseMeasurement,
    GlucoseMeasurementContext,
    GlucoseSampleLocation,
    GlucoseType,
    HardwareRevisionString,
    HeartRateMeasurement,
    IntermediateCuffPressure,
    ManufacturerNameString,
    Meal,
    ModelNumberString,
    OpCode,
    Operator,
    PlxContinuousMeasurement,
    PlxSpotCheckMeasurement,
    RecordAccessControlPoint,
    ResponseCode,
    SerialNumberString,
    SFloat,
    SoftwareRevisionString,
    SystemId,
    TemperatureMeasurement,
    TemperatureType,
    Tester,
    WeightMeasurement,
)
from devices.codecs.glucose_measurement_context import CarbohydrateId, Health, MedicationId
from devices.codecs.registry import Characteristic


@dataclass(frozen=True)
class Vector:
    """One golden payload."""

    name: str
    uuid: int
    hex: str
    expected: Characteristic
    source: str
    # False for payloads whose prefixes can be valid on their own (strings, opaque operands).
    fixed_shape: bool = True

    @property
    def data(self) -> bytes:
        return bytes.fromhex(self.hex.replace(" ", ""))


def _s(exponent: int, mantissa: int) -> SFloat:
    return SFloat(exponent, mantissa)


VECTORS: tuple[Vector, ...] = (
    Vector(
        "glucose_nordic_kg_l_offset_status_context",
        0x2A18,
        # flags 0b011011; seq 1; 2019-02-27 11:10:30; offset -5; 30 kg/L; capillary plasma,
        # finger; status 0x0105 (battery low, strip insertion? no: bits 0, 2, 8)
        "1B 0100 E307 02 1B 0B 0A 1E FBFF 1E00 12 0501",
        GlucoseMeasurement(
            0x1B,
            1,
            datetime(2019, 2, 27, 11, 10, 30),
            -5,
            _s(0, 30),
            GlucoseType.CAPILLARY_PLASMA,
            GlucoseSampleLocation.FINGER,
            0x0105,
        ),
        "NordicSemiconductor/Android-BLE-Library GlucoseMeasurementDataCallbackTest "
        "onGlucoseMeasurementReceived",
    ),
    Vector(
        "glucose_minimal_no_fields",
        0x2A18,
        "00 0100 E707 0C 1F 17 3B 3B",  # flags 0, seq 1, 2023-12-31 23:59:59
        GlucoseMeasurement(0x00, 1, datetime(2023, 12, 31, 23, 59, 59)),
        "spec table 2.1: the 10-byte fixed part",
    ),
    Vector(
        "glucose_mmol_with_offset_and_status",
        0x2A18,
        # flags 0x0F; seq 0x0102; 2024-03-05 07:08:09; offset -420 (0xFE5C); 5.5 mmol/L as
        # 55e-4 mol/L (0xC037); type 1 capillary whole blood, location 1 finger (0x11);
        # status bit 5 result too high (0x0020)
        "0F 0201 E807 03 05 07 08 09 5CFE 37C0 11 2000",
        GlucoseMeasurement(
            0x0F,
            0x0102,
            datetime(2024, 3, 5, 7, 8, 9),
            -420,
            _s(-4, 55),
            GlucoseType.CAPILLARY_WHOLE_BLOOD,
            GlucoseSampleLocation.FINGER,
            0x0020,
        ),
        "spec table 2.1 (17-byte maximum); -420 min offset as in the Contour Next One capture "
        "in LiamsGitHub/GlucometerBluetoothToHealthKit README",
    ),
    Vector(
        "glucose_mg_dl_context_follows_control_solution",
        0x2A18,
        # flags 0x12 (concentration, kg/L, context follows); seq 7; 2019-07-04 12:00:00;
        # 120 mg/dL = 120e-5 kg/L = 0xB078; type 10 control solution, location 4 (0x4A)
        "12 0700 E307 07 04 0C 00 00 78B0 4A",
        GlucoseMeasurement(
            0x12,
            7,
            datetime(2019, 7, 4, 12),
            None,
            _s(-5, 120),
            GlucoseType.CONTROL_SOLUTION,
            GlucoseSampleLocation.CONTROL_SOLUTION,
        ),
        "spec table 2.1; docs/device-profiles.md quirk 26: 120 mg/dL is 0xB078, not 0x8078",
    ),
    Vector(
        "glucose_offset_overrun_hi_reading_rfu_codes",
        0x2A18,
        # flags 0x07 (offset, concentration, mol/L); base time all zero (unknown);
        # offset 0x7FFF overrun; +INF (HI); type 0 RFU, location 5 RFU (0x50)
        "07 FFFF 0000 00 00 00 00 00 FF7F FE07 50",
        GlucoseMeasurement(0x07, 0xFFFF, None, 0x7FFF, _s(0, 0x7FE), 0, 5),
        "spec table 2.1 and section 1 (0x07FE = +INF, zeros = unknown date)",
    ),
    Vector(
        "context_all_fields",
        0x2A34,
        # flags 0xFF; seq 3; ext 0; carb id 1 breakfast, 50 g = 50e-3 kg (0xD032);
        # meal 1; tester self / health none (0x51); exercise 600 s, 50 %; medication id 1
        # rapid, 5 mg = 5e-3 L? no: flag bit 5 set -> litres, 5e-3 L (0xD005); HbA1c 6.5 %
        "FF 0300 00 01 32D0 01 51 5802 32 01 05D0 41F0",
        GlucoseMeasurementContext(
            0xFF,
            3,
            0,
            CarbohydrateId.BREAKFAST,
            _s(-3, 50),
            Meal.PREPRANDIAL,
            Tester.SELF,
            Health.NO_HEALTH_ISSUES,
            600,
            50,
            MedicationId.RAPID_ACTING_INSULIN,
            _s(-3, 5),
            _s(-1, 65),
        ),
        "spec table 2.2, every field present",
    ),
    Vector(
        "context_meal_only",
        0x2A34,
        "02 0300 03",
        GlucoseMeasurementContext(0x02, 3, meal=Meal.FASTING),
        "spec table 2.2",
    ),
    Vector(
        "glucose_feature",
        0x2A51,
        "FF 07",
        GlucoseFeature(0x07FF),
        "spec table 2.3: all eleven defined bits",
    ),
    Vector(
        "racp_report_all",
        0x2A52,
        "01 01",
        RecordAccessControlPoint(OpCode.REPORT_STORED_RECORDS, Operator.ALL_RECORDS),
        "docs/device-profiles.md 2.4 procedure step 3",
    ),
    Vector(
        "racp_report_from_sequence",
        0x2A52,
        "01 03 01 2A00",
        RecordAccessControlPoint(
            OpCode.REPORT_STORED_RECORDS,
            Operator.GREATER_THAN_OR_EQUAL_TO,
            b"\x01\x2a\x00",
            filter_type=FilterType.SEQUENCE_NUMBER,
            filter_value=42,
        ),
        "docs/device-profiles.md 2.4 step 3 (`01 03 01 <seq_lo> <seq_hi>`); tidepool ble-glucose "
        "7d6db46",
    ),
    Vector(
        "racp_count_time_range",
        0x2A52,
        "04 04 02 E807 01 01 00 00 00 E807 01 02 00 00 00",
        RecordAccessControlPoint(
            OpCode.REPORT_NUMBER_OF_STORED_RECORDS,
            Operator.WITHIN_RANGE_OF,
            bytes.fromhex("02E80701010000 00E80701020000 00".replace(" ", "")),
            filter_type=FilterType.USER_FACING_TIME,
            filter_min=datetime(2024, 1, 1),
            filter_max=datetime(2024, 1, 2),
        ),
        "docs/device-profiles.md 2.4 operand table (filter type 2, user facing time)",
    ),
    Vector(
        "racp_number_of_records",
        0x2A52,
        "05 00 2C01",
        RecordAccessControlPoint(
            OpCode.NUMBER_OF_STORED_RECORDS_RESPONSE,
            Operator.NULL,
            b"\x2c\x01",
            number_of_records=300,
        ),
        "docs/device-profiles.md 2.4 step 2 (`05 00 nn nn`)",
    ),
    Vector(
        "racp_no_records_found",
        0x2A52,
        "06 00 01 06",
        RecordAccessControlPoint(
            OpCode.RESPONSE_CODE,
            Operator.NULL,
            b"\x01\x06",
            request_op_code=OpCode.REPORT_STORED_RECORDS,
            response_code=ResponseCode.NO_RECORDS_FOUND,
        ),
        "docs/device-profiles.md 2.4 step 5 (`06 00 01 06`)",
    ),
    Vector(
        "racp_abort",
        0x2A52,
        "03 00",
        RecordAccessControlPoint(OpCode.ABORT_OPERATION, Operator.NULL),
        "docs/device-profiles.md 2.4 step 6",
    ),
    Vector(
        "racp_omron_vendor_op_code",
        0x2A52,
        "10 00",
        RecordAccessControlPoint(0x10, Operator.NULL),
        "docs/device-profiles.md quirk 21 (Omron 0x10, StanfordSpezi "
        "RecordAccessOpCode+Omron.swift)",
        fixed_shape=False,
    ),
    Vector(
        "bpm_beurer_bm67_capture",
        0x2A35,
        # flags 0x1E; 112/77/0 mmHg; 2015-01-14 10:55:00; pulse 72; user 1; status 0
        "1E 7000 4D00 0000 DF07 01 0E 0A 37 00 4800 01 0000",
        BloodPressureMeasurement(
            0x1E,
            _s(0, 112),
            _s(0, 77),
            _s(0, 0),
            datetime(2015, 1, 14, 10, 55),
            _s(0, 72),
            1,
            0,
        ),
        "public capture: Beurer BM67 example in a C# BleConnector BloodPressureMeasurement "
        "doc comment (found via code search), a standard-conformant 19-byte payload",
    ),
    Vector(
        "bpm_nordic_full_year_unknown",
        0x2A35,
        "1E 8A00 5800 7800 0000 04 11 14 29 3B 3C00 01 2700",
        BloodPressureMeasurement(
            0x1E,
            _s(0, 138),
            _s(0, 88),
            _s(0, 120),
            DateTime(0, 4, 17, 20, 41, 59),
            _s(0, 60),
            1,
            0b100111,
        ),
        "NordicSemiconductor/Android-BLE-Library BloodPressureMeasurementDataCallbackTest "
        "onBloodPressureMeasurementReceived_full (year 0 = unknown, kept as a DateTime)",
    ),
    Vector(
        "bpm_nordic_some_kpa",
        0x2A35,
        "15 BDF0 0B00 9FF0 3C00 1200",
        BloodPressureMeasurement(
            0x15, _s(-1, 189), _s(0, 11), _s(-1, 159), None, _s(0, 60), None, 0b010010
        ),
        "Android-BLE-Library BloodPressureMeasurementDataCallbackTest _some",
    ),
    Vector(
        "bpm_nordic_minimal",
        0x2A35,
        "00 BDF0 0B00 9FF0",
        BloodPressureMeasurement(0x00, _s(-1, 189), _s(0, 11), _s(-1, 159)),
        "Android-BLE-Library BloodPressureMeasurementDataCallbackTest _minimal",
    ),
    Vector(
        "bpm_kpa_minimal",
        0x2A35,
        "01 B0F0 C0F0 FF07",  # 17.6 kPa (0xF0B0), 19.2? no: 0xF0C0 = 192e-1; MAP NaN
        BloodPressureMeasurement(0x01, _s(-1, 176), _s(-1, 192), _s(0, 0x7FF)),
        "docs/device-profiles.md quirk 26: obniz UA651BLE doc example 17.6 kPa is `B0 F0`",
    ),
    Vector(
        "icp_nan_slots",
        0x2A36,
        "04 7800 FF07 FF07 4800",
        IntermediateCuffPressure(0x04, _s(0, 120), _s(0, 0x7FF), _s(0, 0x7FF), None, _s(0, 72)),
        "spec table 2.6: unused slots NaN",
    ),
    Vector(
        "icp_nordic_zero_slots",
        0x2A36,
        "00 7800 0000 0000",
        IntermediateCuffPressure(0x00, _s(0, 120), _s(0, 0), _s(0, 0)),
        "docs/device-profiles.md 2.6 / quirk 28: Nordic's tests fill the unused slots with 0x0000",
    ),
    Vector(
        "bp_feature",
        0x2A49,
        "FF 01",
        BloodPressureFeature(0x01FF),
        "docs/device-profiles.md 2.7: SpeziBluetooth BloodPressureTests raw 0x1FF",
    ),
    Vector(
        "current_time",
        0x2A2B,
        # 2024-02-29 13:45:30, Thursday, 128/256 s, reason: external reference update
        "E807 02 1D 0D 2D 1E 04 80 02",
        CurrentTime(datetime(2024, 2, 29, 13, 45, 30), DayOfWeek.THURSDAY, 128, 2),
        "spec table 2.8 (10 bytes)",
    ),
    Vector(
        "date_time_partly_unknown",
        0x2A08,
        "0000 03 00 0A 00 00",
        DateTime(0, 3, 0, 10, 0, 0),
        "section 1: zero year/day are 'unknown', legal in Date Time",
    ),
    Vector(
        "manufacturer_name",
        0x2A29,
        "526F636865",
        ManufacturerNameString("Roche"),
        "DIS string, UTF-8",
        fixed_shape=False,
    ),
    Vector(
        "firmware_revision_utf8",
        0x2A26,
        "76312E32C2B5",
        FirmwareRevisionString("v1.2\u00b5"),
        "DIS string with a multi-byte UTF-8 character",
        fixed_shape=False,
    ),
    Vector(
        "system_id",
        0x2A23,
        "0102030405 A1B2C3",
        SystemId(0x0504030201, 0xC3B2A1),
        "SIG XML system_id: uint40 manufacturer id then uint24 OUI, little-endian",
    ),
    Vector(
        "dis_medisana_bs444_strings_model",
        0x2A24,
        "4253343434",
        ModelNumberString("BS444"),
        "hand-made: the model name of the openScale wiki Medisana-BS444.md page (not a capture)",
        fixed_shape=False,
    ),
    Vector(
        "dis_medisana_bs444_software",
        0x2A28,
        "424C455F4246",
        SoftwareRevisionString("BLE_BF"),
        "openScale wiki Medisana-BS444.md: 'Software revision string: BLE_BF'",
        fixed_shape=False,
    ),
    Vector(
        "dis_medisana_bs444_hardware",
        0x2A27,
        "4232",
        HardwareRevisionString("B2"),
        "openScale wiki Medisana-BS444.md: 'Hardware revision string: 0x4232' (ASCII 'B2')",
        fixed_shape=False,
    ),
    Vector(
        "dis_serial_with_nul_padding",
        0x2A25,
        "3132333400",
        SerialNumberString("1234\x00"),
        "DIS string padded with a NUL, kept as a character for the exact round trip",
        fixed_shape=False,
    ),
    Vector("battery_level", 0x2A19, "4B", BatteryLevel(75), "SIG XML battery_level"),
    Vector(
        "heart_rate_u8_contact_detected",
        0x2A37,
        "06 48",
        HeartRateMeasurement(0x06, 72),
        "docs/device-profiles.md 2.9 heart rate: flags bits 1-2 = 3 (contact detected), uint8 72 "
        "bpm",
    ),
    Vector(
        "heart_rate_u16_energy_rr",
        0x2A37,
        "19 4800 E803 0004 0002",  # u16 72 bpm, 1000 kJ, RR 1.0 s and 0.5 s
        HeartRateMeasurement(0x19, 72, 1000, (1024, 512)),
        "docs/device-profiles.md 2.9 heart rate (RR in 1/1024 s)",
        fixed_shape=False,  # a prefix that drops a whole RR interval is itself valid
    ),
    Vector(
        "temperature_nordic_finger",
        0x2A1C,
        "06 B00E00FE DC07 0C 05 0B 32 1B 04",  # 3760e-2 Cel, 2012-12-05 11:50:27, finger
        TemperatureMeasurement(
            0x06, Float(-2, 3760), datetime(2012, 12, 5, 11, 50, 27), TemperatureType.FINGER
        ),
        "NordicSemiconductor/Android-BLE-Library TemperatureMeasurementDataCallbackTest "
        "onTemperatureMeasurementReceived",
    ),
    Vector(
        "temperature_celsius_with_time_and_type",
        0x2A1C,
        "06 6F0100FF E807 01 02 03 04 05 02",  # 367e-1 Cel, 2024-01-02 03:04:05, body
        TemperatureMeasurement(
            0x06, Float(-1, 367), datetime(2024, 1, 2, 3, 4, 5), TemperatureType.BODY
        ),
        "docs/device-profiles.md 2.9 temperature (32-bit FLOAT), SIG XML temperature_type",
    ),
    Vector(
        "weight_si_all_fields",
        0x2A9D,
        "0E 983A E807 01 02 03 04 05 01 F000 B206",  # 75.0 kg, user 1, BMI 24.0, 1.714 m
        WeightMeasurement(0x0E, 15000, datetime(2024, 1, 2, 3, 4, 5), 1, 240, 1714),
        "docs/device-profiles.md 2.9 weight (0.005 kg, BMI x0.1, height x0.001 m)",
    ),
    Vector(
        "weight_unsuccessful",
        0x2A9D,
        "00 FFFF",
        WeightMeasurement(0x00, 0xFFFF),
        "docs/device-profiles.md 2.9: 0xFFFF = measurement unsuccessful",
    ),
    Vector(
        "plx_spot_check_all_fields",
        0x2A5E,
        # SpO2 98 %, PR 72 bpm, 2024-01-02 03:04:05, status 0x0001, device 0x000001, PAI 5.0 %
        "1F 6200 4800 E807 01 02 03 04 05 0100 010000 32F0",
        PlxSpotCheckMeasurement(
            0x1F, _s(0, 98), _s(0, 72), datetime(2024, 1, 2, 3, 4, 5), 1, 1, _s(-1, 50)
        ),
        "SIG XML plx_spot_check_measurement (docs/device-profiles.md 2.9), clock-not-set bit 4 too",
    ),
    Vector(
        "plx_continuous_all_fields",
        0x2A5F,
        "1F 6200 4800 6100 4900 6300 4700 0200 020000 FF07",
        PlxContinuousMeasurement(
            0x1F,
            _s(0, 98),
            _s(0, 72),
            _s(0, 97),
            _s(0, 73),
            _s(0, 99),
            _s(0, 71),
            2,
            2,
            _s(0, 0x7FF),
        ),
        "SIG XML plx_continuous_measurement: normal, fast, slow, status, device, PAI (NaN)",
    ),
    Vector(
        "cgm_nordic_full_with_crc",
        0x2AA7,
        # size 15, flags 0xE3, 12.34 mg/dL, offset 5, octets 02 14 FF, trend 0.2, quality
        # 99.7, E2E-CRC 0x3F8E. Nordic's comments name the octets Warning, Cal/Temp, Status;
        # by the wire order (docs/device-profiles.md quirk 27) they are Status, Cal/Temp, Warning.
        "0F E3 D2E4 0500 02 14 FF 02F0 E5F3 8E3F",
        CgmMeasurementNotification(
            (CgmMeasurement(0xE3, _s(-2, 1234), 5, 0x02, 0x14, 0xFF, _s(-1, 2), _s(-1, 997), True),)
        ),
        "NordicSemiconductor/Android-BLE-Library ContinuousGlucoseMeasurementDataCallbackTest "
        "onContinuousGlucoseMeasurementReceived_full",
    ),
    Vector(
        "cgm_nordic_small",
        0x2AA7,
        "06 00 0C10 0600",
        CgmMeasurementNotification((CgmMeasurement(0x00, _s(1, 12), 6),)),
        "Android-BLE-Library ContinuousGlucoseMeasurementDataCallbackTest _small (120 mg/dL)",
    ),
    Vector(
        "cgm_minimal_without_crc",
        0x2AA7,
        "06 00 6400 0000",
        CgmMeasurementNotification((CgmMeasurement(0x00, _s(0, 100), 0),)),
        "docs/device-profiles.md 2.9 CGM: size 6 = computed length",
    ),
    Vector(
        "cgm_minimal_with_crc",
        0x2AA7,
        "08 00 6400 0000 20C2",
        CgmMeasurementNotification((CgmMeasurement(0x00, _s(0, 100), 0, with_e2e_crc=True),)),
        "docs/device-profiles.md 2.9 CGM: size = computed + 2, CRC-16/MCRF4XX over the first 6 "
        "bytes",
    ),
    Vector(
        "cgm_all_octets_trend_quality_crc",
        0x2AA7,
        # flags 0xE3; 120 mg/dL; 5 min; status 01, cal/temp 02, warning 04 (wire order);
        # trend -0.5 mg/dL/min (0xFFFB); quality 95 %; CRC
        "0F E3 7800 0500 01 02 04 FBFF 5F00 D85B",
        CgmMeasurementNotification(
            (CgmMeasurement(0xE3, _s(0, 120), 5, 1, 2, 4, _s(-1, -5), _s(0, 95), True),)
        ),
        "docs/device-profiles.md 2.9 CGM: octets in Status, Cal/Temp, Warning order (sdk-nrf "
        "cgms.c)",
    ),
    Vector(
        "cgm_two_records_in_one_notification",
        0x2AA7,
        # 120 mg/dL at 5 min, then 120 mg/dL at 6 min, each size-prefixed, back to back
        "06 00 0C10 0500 06 00 0C10 0600",
        CgmMeasurementNotification(
            (CgmMeasurement(0x00, _s(1, 12), 5), CgmMeasurement(0x00, _s(1, 12), 6))
        ),
        "Android-BLE-Library ContinuousGlucoseMeasurementDataCallbackTest _double; CGMS 1.0.1 "
        "3.1 (several records per notification)",
        fixed_shape=False,  # a prefix that drops the whole second record is itself valid
    ),
    Vector(
        "cgm_feature_e2e_crc",
        0x2AA8,
        # features 0x001000 (E2E-CRC supported), type 9 ISF / location 1 finger... 0x19,
        # CRC-16/MCRF4XX over the four octets
        "00 10 00 19 F40B",
        CgmFeature(0x001000, 0x19, 0x0BF4),
        "CGMS 1.0.1 3.2: uint24 features, type/location, E2E-CRC over them",
    ),
    Vector(
        "cgm_feature_without_crc",
        0x2AA8,
        "01 00 00 19 FFFF",  # calibration supported, no E2E-CRC: the CRC field is 0xFFFF
        CgmFeature(0x000001, 0x19, 0xFFFF),
        "CGMS 1.0.1 3.2.3: E2E-CRC field 0xFFFF when E2E-CRC is not supported",
    ),
    Vector(
        "cgm_session_start_time_with_crc",
        0x2AAA,
        # 2026-03-01 08:00:00 local, UTC+1 h (4 x 15 min), standard time, E2E-CRC
        "EA07 03 01 08 00 00 04 00 AE72",
        CgmSessionStartTime(datetime(2026, 3, 1, 8, 0), 4, 0, True),
        "CGMS 1.0.1 3.5: Date Time, Time Zone, DST Offset, E2E-CRC",
        fixed_shape=False,  # without the CRC the value is itself valid
    ),
)
