"""The finer incident type of a playbook, after the classes of GB/T 20986-2023
(信息安全技术 网络安全事件分类分级指南) where they fit.

The ids are ir's own stable slugs `<class>/<subclass>`; the labels carry the standard's class names.
Telecom outages that the standard files under equipment and facility failures are kept there.
"""

from __future__ import annotations

from ir.domain.text import Text

# class slug -> (class label, {subclass slug: subclass label})
_CLASSES: dict[str, tuple[Text, dict[str, Text]]] = {
    "malware": (
        Text("恶意程序事件", "malicious program incident"),
        {
            "virus": Text("计算机病毒事件", "computer virus"),
            "worm": Text("网络蠕虫事件", "network worm"),
            "trojan": Text("特洛伊木马事件", "trojan horse"),
            "botnet": Text("僵尸网络事件", "botnet"),
            "ransomware": Text("勒索软件事件", "ransomware"),
            "mining": Text("挖矿程序事件", "cryptomining program"),
            "other": Text("其他恶意程序事件", "other malicious program"),
        },
    ),
    "network-attack": (
        Text("网络攻击事件", "network attack incident"),
        {
            "denial-of-service": Text("拒绝服务攻击事件", "denial-of-service attack"),
            "intrusion": Text("网络入侵事件", "network intrusion"),
            "exploit": Text("漏洞利用事件", "vulnerability exploitation"),
            "backdoor": Text("后门利用事件", "backdoor exploitation"),
            "scanning": Text("网络扫描探测事件", "network scanning and probing"),
            "phishing": Text("网络钓鱼事件", "phishing"),
            "dns-hijack": Text("域名劫持事件", "domain name hijacking"),
            "other": Text("其他网络攻击事件", "other network attack"),
        },
    ),
    "data-security": (
        Text("数据安全事件", "data security incident"),
        {
            "leak": Text("数据泄露事件", "data leak"),
            "theft": Text("数据窃取事件", "data theft"),
            "tampering": Text("数据篡改事件", "data tampering"),
            "loss": Text("数据丢失事件", "data loss"),
            "other": Text("其他数据安全事件", "other data security incident"),
        },
    ),
    "content-security": (
        Text("信息内容安全事件", "information content security incident"),
        {"other": Text("信息内容安全事件", "information content security incident")},
    ),
    "equipment-failure": (
        Text("设备设施故障事件", "equipment and facility failure incident"),
        {
            "hardware": Text("硬件设备故障", "hardware failure"),
            "software": Text("软件系统故障", "software failure"),
            "transmission": Text("传输线路故障", "transmission line failure"),
            "supporting-facility": Text("配套设施故障(电力、空调等)", "supporting facility failure (power, cooling)"),
            "other": Text("其他设备设施故障", "other equipment or facility failure"),
        },
    ),
    "improper-operation": (
        Text("违规操作事件", "improper operation incident"),
        {"other": Text("违规操作事件", "improper operation")},
    ),
    "security-hazard": (
        Text("安全隐患事件", "security hazard incident"),
        {"other": Text("安全隐患事件", "security hazard")},
    ),
    "abnormal-behaviour": (
        Text("异常行为事件", "abnormal behaviour incident"),
        {"other": Text("异常行为事件", "abnormal behaviour")},
    ),
    "force-majeure": (
        Text("不可抗力事件", "force majeure incident"),
        {
            "earthquake": Text("地震灾害", "earthquake"),
            "flood": Text("洪涝灾害", "flood"),
            "typhoon": Text("台风灾害", "typhoon"),
            "extreme-weather": Text("极端天气(冰雪、高温等)", "extreme weather (ice, snow, heat)"),
            "fire": Text("火灾", "fire"),
            "power-grid": Text("电网大面积停电", "large-scale power grid failure"),
            "geological": Text("地质灾害", "geological disaster"),
            "other": Text("其他不可抗力事件", "other force majeure"),
        },
    ),
    "major-event": (
        Text("重大活动通信保障", "communications support for a major event"),
        {"support": Text("重大活动通信保障", "major-event communications support")},
    ),
    "other": (Text("其他事件", "other incident"), {"other": Text("其他事件", "other incident")}),
}

INCIDENT_TYPES: dict[str, Text] = {
    f"{cls}/{sub}": Text(f"{label.zh_cn} / {sub_label.zh_cn}", f"{label.en} / {sub_label.en}")
    for cls, (label, subs) in _CLASSES.items()
    for sub, sub_label in subs.items()
}


def incident_type_label(type_id: str) -> Text:
    return INCIDENT_TYPES.get(type_id, Text.same(type_id))
