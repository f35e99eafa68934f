"""Screen texts of the review app in Chinese (the default) and English."""

from __future__ import annotations

from models.card import CardStatus

__all__ = ["LANGUAGES", "STATUS_LABELS", "status_label", "text"]

# Language code -> name shown in the language selector.
LANGUAGES = {"zh": "中文", "en": "English"}

# Text id -> (Chinese, English). Placeholders use str.format names.
TEXTS: dict[str, tuple[str, str]] = {
    "app_title": ("户卡审核", "Card review"),
    "language": ("语言 / Language", "语言 / Language"),
    "signed_in_as": ("已登录：**{name}**（{role}）", "Signed in as **{name}** ({role})"),
    "sign_out": ("退出登录", "Sign out"),
    "sign_in": ("登录", "Sign in"),
    "sign_in_heading": ("请登录", "Sign in"),
    "user_name": ("用户名", "User name"),
    "password": ("密码", "Password"),
    "sign_in_missing": ("请填写用户名和密码。", "Enter your user name and password."),
    "sign_in_failed": ("用户名或密码不正确。", "The user name or password is wrong."),
    "sign_in_locked": (
        "登录失败次数过多，请 {minutes} 分钟后再试。",
        "Too many failed sign-ins. Try again in {minutes} min.",
    ),
    "no_users": (
        "还没有任何账户。请在服务器上运行 python -m ocr user add 姓名 --role admin 创建第一个管理员，再用它登录。",
        "There are no accounts yet. On the server, run python -m ocr user add NAME --role admin "
        "to create the first admin, then sign in with it.",
    ),
    "session_expired": (
        "您已 {minutes} 分钟未操作，已自动退出。请重新登录。",
        "You were signed out after {minutes} min without activity. Sign in again.",
    ),
    "account_disabled": (
        "您的账户已停用，已退出登录。如有疑问请联系管理员。",
        "Your account was disabled, so you were signed out. Ask an admin if this is unexpected.",
    ),
    "store_failed": ("无法打开数据库：{message}", "cannot open the database: {message}"),
    "templates_failed": (
        "无法载入环境变量 HUKA_TEMPLATE_DIRS 指定的模板目录：{message}",
        "cannot load the template folders named in HUKA_TEMPLATE_DIRS: {message}",
    ),
    "queue_title": ("待审核卡片", "Cards to review"),
    "batch": ("批次", "Batch"),
    "no_batches": (
        "还没有批次。请先用 python -m ocr ingest 读入扫描件。",
        "There are no batches yet. Read scans in with python -m ocr ingest first.",
    ),
    "queue_empty": ("批次 {batch} 中没有待审核的卡片。", "Batch {batch} has no cards that need review."),
    "queue_count": (
        "批次 {batch} 中有 {count} 张卡片待审核，最早入库的排在最前。",
        "Batch {batch} has {count} cards that need review, oldest first.",
    ),
    "col_card": ("卡片", "Card"),
    "col_source": ("扫描文件", "Scan file"),
    "col_flagged": ("待核字段", "Flagged fields"),
    "col_created": ("入库时间", "Stored at"),
    "open": ("打开", "Open"),
    "flagged_count": ("{count} 个字段待核", "{count} fields flagged"),
    "back": ("← 返回（Alt+Q）", "← Back (Alt+Q)"),
    "card_heading": ("卡片 {card_id}", "Card {card_id}"),
    "card_meta": (
        "批次 {batch} · 文件 {source} 第 {page} 页 · 类型 {card_type} · 状态 {status} · 版本 {version}",
        "batch {batch} · file {source} page {page} · type {card_type} · status {status} · version {version}",
    ),
    "card_not_found": ("卡片 {card_id} 不存在，已返回队列。", "Card {card_id} was not found; back to the queue."),
    "card_reasons": ("整张卡片的问题", "Problems of the whole card"),
    "candidates": ("候选值", "Candidates"),
    "scan_legend": (
        "点击框即可跳到该字段。框的颜色表示字段状态：",
        "Click a box to jump to its field. The colour of a box is the state of its field:",
    ),
    "state_ok": ("已通过", "passed"),
    "state_flagged": ("待核", "to check"),
    "state_corrected": ("已人工核对", "checked by a person"),
    "state_illegible": ("无法辨认", "illegible"),
    "card_keys": (
        "键盘：在字段中按 Enter 保存修改 · Alt+A 审核通过 · Alt+N / Alt+P 下一个 / 上一个待核字段 · Alt+Q 返回",
        "Keys: Enter in a field saves · Alt+A approves · Alt+N / Alt+P next / previous field to check · Alt+Q back",
    ),
    "held_by": (
        "此卡片正由 {name} 审核，您只能查看，不能修改。",
        "This card is being reviewed by {name}. You can look at it but not change it.",
    ),
    "held_by_short": ("{name} 审核中", "{name} is reviewing"),
    "release_hold": ("解除保留（主管）", "Release the hold (supervisor)"),
    "hold_released": ("已解除卡片 {card_id} 的保留。", "The hold on card {card_id} is released."),
    "col_holder": ("审核人", "Reviewer"),
    "illegible_count": ("{count} 个无法辨认", "{count} illegible"),
    "illegible_note": ("以下字段无法辨认，请前台核实补填：{fields}", "illegible fields for the front desk to fill in: {fields}"),
    "scan_missing": ("找不到扫描图 {path}。", "The scan image {path} was not found."),
    "flagged_heading": ("待核字段（{count}）", "Flagged fields ({count})"),
    "no_flagged": (
        "没有待核字段。核对其余字段后即可审核通过。",
        "No field is flagged. Check the other fields, then approve.",
    ),
    "no_box": ("（无位置）", "(no position)"),
    "other_fields": ("其他字段（{count}）", "Other fields ({count})"),
    "save": ("保存修改（Enter）", "Save corrections (Enter)"),
    "approve": ("审核通过（Alt+A）", "Approve (Alt+A)"),
    "reject_heading": ("退回", "Reject"),
    "reject_kind": ("退回原因", "Reason"),
    "reject_rescan": ("重新扫描", "Rescan"),
    "reject_front_desk": ("退回前台补填", "Return to front desk to fill blanks"),
    "reject_note": ("退回说明（必填）", "Note (required)"),
    "reject_note_help": ("写明需要前台补填或重新扫描的内容", "What the front desk has to fill in, or why to rescan"),
    "reject_kind_missing": ("请选择退回原因：重新扫描，或退回前台补填。", "Choose a reason: rescan, or return to the front desk."),
    "reject_note_missing": ("请写明退回说明，前台要据此处理。", "Write a note: the front desk acts on it."),
    "reject": ("退回", "Reject"),
    "saved": ("已保存卡片 {card_id}（版本 {version}）。", "Saved card {card_id} (version {version})."),
    "nothing_to_save": ("没有需要保存的修改。", "There are no changes to save."),
    "approved": ("卡片 {card_id} 已审核通过。", "Card {card_id} is approved."),
    "rejected": ("卡片 {card_id} 已退回：{reason}。", "Card {card_id} is rejected: {reason}."),
    "field_passes": ("已通过校验", "passes its rules now"),
    "reload": ("重新载入卡片", "Reload card"),
    "unknown_type": (
        "未能识别此卡片的类型（{card_type}），只能退回。下面是识别出的全部文字：",
        "The type of this card ({card_type}) was not recognised, so it can only be rejected. "
        "All text read from the page:",
    ),
    "full_text": ("识别出的全部文字", "All text read"),
    "exported_correction": (
        "此卡片已导出。保存的更正会在下次导出时作为更正记录写出；已上报的记录会作为更正重新上报。"
        "退回此卡会在下次导出时写出撤销记录。",
        "This card was exported. A saved correction is written as a correction by the next export, "
        "and a record already sent is sent again as a correction. Rejecting it writes a cancellation at the next export.",
    ),
    "confirm_true": (
        "原卡无误，确认属实（如签证在离店前到期、两张卡确为不同旅客）",
        "The card is right: confirm as true (e.g. the visa ends before departure, the two cards are distinct guests)",
    ),
    "confirm_reason": ("确认原因（必填，记入审计日志）", "Reason (required, kept in the audit log)"),
    "confirm_reason_help": (
        "例如：客人签证 12 月 20 日到期，已告知前台",
        "e.g. the guest's visa ends on 20 Dec; the front desk was told",
    ),
    "confirm_reason_missing": (
        "已勾选“确认属实”，请写明确认原因。",
        "You ticked “confirm as true”: write the reason.",
    ),
    "duplicate_serial": (
        "编号与卡片 {card_ids} 相同：同一张卡可能扫描或拍照后入库了两次。请退回其中一张；"
        "如确为两张不同的卡片，请勾选“原卡无误，确认属实”并写明原因。",
        "The card serial is the same as on card {card_ids}: the card may be stored twice. Reject one of them, "
        "or tick “confirm as true” and write why both are distinct cards.",
    ),
    "not_reviewable": (
        "此卡片当前状态为「{status}」，不在待审核范围内，不能修改。",
        "This card is {status} and cannot be changed here.",
    ),
    "reason_codes": ("问题代码：{codes}", "problem codes: {codes}"),
    "fields_title": ("字段队列", "Field queue"),
    "fields_keys": (
        "键盘操作：Enter 接受框中的值（直接输入即替换建议值）· Alt+1 / Alt+2 / Alt+3 选择候选值 · "
        "Alt+X 无法辨认，退回前台 · Alt+O 打开整张卡片",
        "Keys: Enter accepts the value in the box (typing replaces the suggestion) · Alt+1 / Alt+2 / Alt+3 take a "
        "candidate · Alt+X illegible, return to the front desk · Alt+O open the whole card",
    ),
    "fields_progress": (
        "还有 {count} 个待核字段，分布在 {cards} 张卡片中；校验未通过的排在前面，其次是置信度最低的。",
        "{count} fields to check on {cards} cards; fields that fail a rule come first, then the lowest confidence.",
    ),
    "fields_held_elsewhere": (
        "另有 {count} 个字段所在的卡片正由他人审核，已跳过。",
        "{count} more fields are on cards someone else is reviewing and are skipped.",
    ),
    "fields_done": ("批次 {batch} 中没有待核字段了。", "Batch {batch} has no fields left to check."),
    "field_of_card": ("卡片 #{card_id} · {source} 第 {page} 页", "card #{card_id} · {source} page {page}"),
    "confidence": ("识别置信度 {value}", "confidence {value}"),
    "accept": ("接受（Enter）", "Accept (Enter)"),
    "pick_candidate": ("{number}) {value}（Alt+{number}）", "{number}) {value} (Alt+{number})"),
    "mark_illegible": ("无法辨认，退回前台（Alt+X）", "Illegible, ask the front desk (Alt+X)"),
    "open_whole_card": ("打开整张卡片（Alt+O）", "Open the whole card (Alt+O)"),
    "answer_fails": (
        "此值仍未通过校验：{reason}。请改正后按 Enter；若要与其他字段一起修改，按 Alt+O 打开整张卡片；无法辨认则按 Alt+X。",
        "This value still fails a rule: {reason}. Correct it and press Enter; press Alt+O to edit it together with "
        "other fields, or Alt+X if it is illegible.",
    ),
    "last_answer": ("上一项：卡片 #{card_id} {label} → {value}", "Last answer: card #{card_id} {label} → {value}"),
    "last_illegible": (
        "上一项：卡片 #{card_id} {label} → 已标记为无法辨认",
        "Last answer: card #{card_id} {label} → marked illegible",
    ),
    "blank": ("（空白）", "(blank)"),
    "upcoming": ("接下来", "Next"),
    "card_ready": (
        "卡片 {card_id} 的待核字段已全部处理。请核对整张记录，无误后按 Alt+A 审核通过。",
        "All flagged fields of card {card_id} are answered. Check the whole record, then press Alt+A to approve.",
    ),
    "card_to_front_desk": (
        "卡片 {card_id} 有无法辨认的字段，已列入下方的退回前台清单。",
        "Card {card_id} has illegible fields and is listed below for return to the front desk.",
    ),
    "field_confirm_in_card": (
        "字段队列中不能退回卡片，也不能确认属实：如为重复入库的卡片或原卡无误，请按 Alt+O 打开整张卡片处理；"
        "如值有误，输入正确的值后按 Enter。",
        "The field queue cannot reject a card or confirm a value as true. If the card is stored twice or the card "
        "is right, press Alt+O to open the whole card. If the value is wrong, type the right one and press Enter.",
    ),
    "field_needs_card_view": (
        "卡片 #{card_id} {label} 未保存：此字段的问题（编号与其他卡片相同，或需确认原卡属实）不能在字段队列中处理，"
        "本次已跳过。请在下方“需打开整张卡片处理”清单中点“打开”（停在该字段时也可按 Alt+O），"
        "退回重复入库的卡片，或勾选“原卡无误，确认属实”并写明原因。",
        "Card #{card_id} {label} is not saved: its problem (a card serial shared with another card, or a value to "
        "confirm as true) cannot be settled in the field queue, so the field is skipped for this session. Open its "
        "card from the list “To settle on the whole card” below (or press Alt+O while the field is shown), then "
        "reject the duplicate card, or tick “confirm as true” and write the reason.",
    ),
    "card_ready_to_confirm": (
        "卡片 {card_id} 在字段队列中能处理的字段已处理完。其余字段请在此处理：退回重复入库的卡片，"
        "或勾选“原卡无误，确认属实”并写明原因，再按 Alt+A 审核通过。",
        "The fields of card {card_id} that the field queue can settle are answered. Settle the rest here: reject "
        "the duplicate card, or tick “confirm as true”, write the reason and press Alt+A to approve.",
    ),
    "card_view_heading": ("需打开整张卡片处理（{count} 个字段）", "To settle on the whole card ({count} fields)"),
    "fields_done_but_card_view": (
        "批次 {batch} 中字段队列能处理的待核字段已处理完；还有 {count} 个字段需打开整张卡片处理，见下方清单。",
        "Batch {batch} has no fields left that the field queue can settle; {count} fields need the whole card "
        "and are listed below.",
    ),
    "front_desk_heading": ("待退回前台（{count} 张）", "To return to the front desk ({count} cards)"),
    "front_desk_row": ("卡片 #{card_id} · {source} · 无法辨认：{fields}", "card #{card_id} · {source} · illegible: {fields}"),
    "users_title": ("用户管理", "Users"),
    "role": ("角色", "Role"),
    "user_state": ("状态", "State"),
    "enabled": ("启用", "enabled"),
    "disabled": ("已停用", "disabled"),
    "last_sign_in": ("最近登录", "Last sign-in"),
    "add_user": ("添加用户", "Add user"),
    "password_repeat": ("再次输入密码", "Repeat the password"),
    "passwords_differ": ("两次输入的密码不一致。", "The two passwords differ."),
    "user_added": ("已添加用户 {name}（{role}）。", "User {name} ({role}) is added."),
    "change_user": ("修改用户", "Change a user"),
    "change_role": ("修改角色", "Change role"),
    "new_password": ("新密码", "New password"),
    "reset_password": ("重设密码", "Reset password"),
    "disable_user": ("停用此用户", "Disable this user"),
    "enable_user": ("启用此用户", "Enable this user"),
    "role_changed": ("{name} 的角色已改为{role}。", "{name} is now {role}."),
    "password_reset": ("已重设 {name} 的密码。", "The password of {name} is reset."),
    "user_enabled": ("已启用 {name}。", "{name} is enabled."),
    "user_disabled": ("已停用 {name}，其登录会话将在下次操作时退出。", "{name} is disabled and is signed out at their next action."),
}

STATUS_LABELS: dict[CardStatus, tuple[str, str]] = {
    CardStatus.EXTRACTED: ("已识别", "extracted"),
    CardStatus.NEEDS_REVIEW: ("待审核", "needs review"),
    CardStatus.AUTO_ACCEPTED: ("自动通过", "auto-accepted"),
    CardStatus.APPROVED: ("已审核", "approved"),
    CardStatus.REJECTED: ("已退回", "rejected"),
    CardStatus.EXPORTED: ("已导出", "exported"),
}


def text(text_id: str, lang: str, **values: object) -> str:
    """Return the screen text ``text_id`` in ``lang`` ("zh" or "en"), with ``values`` filled in."""
    zh, en = TEXTS[text_id]
    template = en if lang == "en" else zh
    return template.format(**values) if values else template


def status_label(status: CardStatus | str, lang: str) -> str:
    """Return the name of a card state in ``lang``."""
    zh, en = STATUS_LABELS.get(CardStatus(status), (str(status), str(status)))
    return en if lang == "en" else zh


# The overview, statistics and search pages keep their texts in their own module.
from review_app.texts_pages import PAGE_TEXTS  # noqa: E402

TEXTS.update(PAGE_TEXTS)
