"""Chinese labels of the contract's codes, as the pages show them (the Opinions' and the Provisions' words)."""

GROUNDS = {
    "CAPABLE_BUT_REFUSES": "有履行能力而拒不履行生效法律文书确定义务",
    "OBSTRUCTS_EXECUTION": "以伪造证据、暴力、威胁等方法妨碍、抗拒执行",
    "EVADES_EXECUTION": "以虚假诉讼、虚假仲裁或者以隐匿、转移财产等方法规避执行",
    "VIOLATES_ASSET_REPORTING": "违反财产报告制度",
    "VIOLATES_CONSUMPTION_RESTRICTION": "违反限制消费令",
    "BREACHES_SETTLEMENT": "无正当理由拒不履行执行和解协议",
}
EVENTS = {
    "RiskWarningIssued": "风险提示",
    "Included": "纳入名单",
    "CorrectionRequested": "申请纠正",
    "CorrectionDecided": "纠正决定",
    "Shielded": "屏蔽",
    "Revoked": "撤销",
    "SanctionApplied": "已实施惩戒",
    "SanctionLifted": "已解除惩戒",
    "SanctionRetained": "依法保留",
    "SanctionFailed": "实施失败",
    "InterceptionRecorded": "拦截记录",
}
KINDS = {"PERSON": "自然人", "ORG": "法人或其他组织"}
