"""The pairing page's languages (English, Simplified Chinese) and glucose units per locale.

The language comes from an explicit choice (the switch on the page, kept in a cookie), else
from the browser's Accept-Language (RFC 9110 12.5.4, quality values honoured), else English.
Glucose is shown in mmol/L (the unit used in China and most of the world) unless the patient
chose mg/dL, or the browser asks for US English, where mg/dL is the customary unit.
"""

from __future__ import annotations

from typing import Final, Literal

Locale = Literal["en", "zh-CN"]
GlucoseUnit = Literal["mmol/L", "mg/dL"]
LOCALES: Final[tuple[Locale, ...]] = ("en", "zh-CN")
UNITS: Final[tuple[GlucoseUnit, ...]] = ("mmol/L", "mg/dL")

TEXT: Final[dict[Locale, dict[str, str]]] = {
    "en": {
        "title": "Home hub: your devices",
        "intro": "Put your meter or cuff in pairing mode, then look for devices.",
        "scan": "Look for devices",
        "discovered": "Devices nearby",
        "none_discovered": "No devices found yet. Put the device in pairing mode and look again.",
        "glucose": "Glucose meter",
        "blood_pressure": "Blood-pressure cuff",
        "heart_rate": "Heart-rate strap",
        "spo2": "Pulse oximeter",
        "cgm_glucose": "Continuous glucose monitor",
        "body_temperature": "Thermometer",
        "body_weight": "Scale",
        "patient": "Patient",
        "user_2": "User 2 of the cuff",
        "nobody": "nobody",
        "hub": "This hub",
        "hub_serves": "Serves",
        "not_enrolled": "This hub is not enrolled yet.",
        "enrol_first": "Enrol this hub with the code from your care team before pairing.",
        "enrol_code": "Enrolment code",
        "enrol": "Enrol",
        "enrolled": "Enrolled: this hub serves {names}.",
        "enrol_title": "Home hub: enrol",
        "enrol_intro": "Type the enrolment code your care team gave you.",
        "starting": "Enrolled for {names}. The hub is starting; this page opens by itself.",
        "code_refused": "That code was not accepted (unknown, expired or already used).",
        "code_later": "Too many tries: wait a few minutes and try again.",
        "enrol_unavailable": "The enrolment server could not be reached: {reason}",
        "passkey": "Passkey shown on the device (if it shows one)",
        "pair": "Pair",
        "paired": "Your devices",
        "none_paired": "No device is paired yet.",
        "last_sync": "Last sync",
        "never": "never",
        "last_readings": "Last readings",
        "no_readings": "No readings yet.",
        "unpair": "Unpair",
        "unpair_title": "Remove this device?",
        "unpair_ask": "Remove {device} from this hub? The hub stops reading it. Readings "
        "already sent to your care team stay there.",
        "unpair_yes": "Yes, remove it",
        "unpair_no": "No, keep it",
        "serial_ending": "serial ending",
        "unit": "Glucose unit",
        "language": "Language",
        "control": "control solution",
        "result_complete": "Paired. Readings fetched: {stored}.",
        "result_nothing_new": "Paired. The device had no new readings.",
        "result_pairing_refused": "The device refused pairing. Check the passkey and try again.",
        "result_not_bonded": "The device forgot this hub. Put it in pairing mode and pair again.",
        "result_other": "Pairing did not finish ({outcome}). Try again.",
        "unpaired": "Device removed.",
        "bad_input": "Please check {field}: {reason}",
        "outcome": "Status",
        "login_title": "Home hub: enter the PIN",
        "login_intro": "Type the 8-digit PIN of this hub. It was shown when the hub first started.",
        "login_pin": "Hub PIN",
        "login_button": "Open",
        "login_wrong": "That PIN is not right. Please try again.",
        "login_locked": "Too many wrong PINs. Please wait a minute, then try again.",
        "progress_title": "Pairing with {device}",
        "progress_keep": "Keep the device close to the hub. This page updates by itself.",
        "progress_elapsed": "{seconds} s so far",
        "step_looking": "Looking for the device…",
        "step_connecting": "Connecting to the device…",
        "step_bonding": "Pairing with the device (checking the passkey)…",
        "step_reading": "Reading from the device: {count} readings received so far…",
        "step_saving": "Saving {count} readings on the hub…",
        "busy": "Another device is being paired. Please wait until it has finished.",
        "pairing_failed": "Pairing stopped because of a problem on the hub. Try again.",
        "pairing_gone": "That pairing is no longer shown. Your devices are listed below.",
    },
    "zh-CN": {
        "title": "家庭网关：您的设备",
        "intro": "请先让血糖仪或血压计进入配对模式，然后搜索设备。",
        "scan": "搜索设备",
        "discovered": "附近的设备",
        "none_discovered": "尚未找到设备。请让设备进入配对模式后再搜索。",
        "glucose": "血糖仪",
        "blood_pressure": "血压计",
        "heart_rate": "心率带",
        "spo2": "血氧仪",
        "cgm_glucose": "动态血糖仪",
        "body_temperature": "体温计",
        "body_weight": "体重秤",
        "patient": "患者",
        "user_2": "血压计的用户 2",
        "nobody": "无",
        "hub": "本网关",
        "hub_serves": "服务对象",
        "not_enrolled": "本网关尚未注册。",
        "enrol_first": "配对前，请用医护团队提供的注册码注册本网关。",
        "enrol_code": "注册码",
        "enrol": "注册",
        "enrolled": "注册成功：本网关服务于 {names}。",
        "enrol_title": "家庭网关：注册",
        "enrol_intro": "请输入医护团队给您的注册码。",
        "starting": "已为 {names} 注册。网关正在启动，本页面会自动打开。",
        "code_refused": "注册码无效（未知、已过期或已使用）。",
        "code_later": "尝试次数过多，请几分钟后再试。",
        "enrol_unavailable": "无法连接注册服务器：{reason}",
        "passkey": "设备上显示的配对码（如有）",
        "pair": "配对",
        "paired": "您的设备",
        "none_paired": "尚未配对任何设备。",
        "last_sync": "最近同步",
        "never": "从未",
        "last_readings": "最近读数",
        "no_readings": "暂无读数。",
        "unpair": "取消配对",
        "unpair_title": "移除此设备？",
        "unpair_ask": "要从本网关移除{device}吗？网关将不再读取它。已发送给医护团队的读数会保留。",
        "unpair_yes": "是，移除",
        "unpair_no": "不，保留",
        "serial_ending": "序列号尾号",
        "unit": "血糖单位",
        "language": "语言",
        "control": "质控液",
        "result_complete": "配对成功。已获取读数：{stored} 条。",
        "result_nothing_new": "配对成功。设备没有新的读数。",
        "result_pairing_refused": "设备拒绝配对。请核对配对码后重试。",
        "result_not_bonded": "设备已忘记本网关。请让设备进入配对模式并重新配对。",
        "result_other": "配对未完成（{outcome}）。请重试。",
        "unpaired": "设备已移除。",
        "bad_input": "请检查 {field}：{reason}",
        "outcome": "状态",
        "login_title": "家庭网关：请输入 PIN 码",
        "login_intro": "请输入本网关的 8 位 PIN 码。网关首次启动时已显示该码。",
        "login_pin": "网关 PIN 码",
        "login_button": "打开",
        "login_wrong": "PIN 码不正确，请重试。",
        "login_locked": "错误次数过多。请等待一分钟后再试。",
        "progress_title": "正在与{device}配对",
        "progress_keep": "请让设备靠近网关。本页面会自动更新。",
        "progress_elapsed": "已用时 {seconds} 秒",
        "step_looking": "正在寻找设备…",
        "step_connecting": "正在连接设备…",
        "step_bonding": "正在与设备配对（核对配对码）…",
        "step_reading": "正在读取设备数据：已收到 {count} 条读数…",
        "step_saving": "正在网关上保存 {count} 条读数…",
        "busy": "正在配对另一台设备。请等它完成后再试。",
        "pairing_failed": "网关出现问题，配对已停止。请重试。",
        "pairing_gone": "该配对记录已不再显示。您的设备列在下方。",
    },
}


def _ranges(accept_language: str) -> list[tuple[str, float]]:
    ranges = []
    for part in accept_language.split(","):
        tag, _, params = part.strip().partition(";")
        quality = 1.0
        if params.strip().startswith("q="):
            try:
                quality = float(params.strip()[2:])
            except ValueError:
                quality = 0.0
        if tag:
            ranges.append((tag.strip().lower(), quality))
    return sorted(ranges, key=lambda r: -r[1])


def choose_locale(accept_language: str | None, chosen: str | None) -> Locale:
    """The page language: the patient's choice, else the browser's preference, else English."""
    if chosen in LOCALES:
        return chosen  # type: ignore[return-value]
    for tag, quality in _ranges(accept_language or ""):
        if quality <= 0:
            continue
        if tag.startswith("zh"):
            return "zh-CN"
        if tag.startswith("en"):
            return "en"
    return "en"


def choose_unit(accept_language: str | None, chosen: str | None) -> GlucoseUnit:
    """The glucose unit: the patient's choice, else mg/dL for US English, else mmol/L."""
    if chosen in UNITS:
        return chosen  # type: ignore[return-value]
    ranges = [tag for tag, q in _ranges(accept_language or "") if q > 0]
    return "mg/dL" if ranges and ranges[0] == "en-us" else "mmol/L"
