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
    "reviewer": ("审核人", "Reviewer"),
    "reviewer_help": (
        "您的姓名会记入每一次修改的审核记录。",
        "Your name is written to the audit log with every change.",
    ),
    "reviewer_missing": (
        "请先在左侧栏填写审核人姓名，然后再保存。",
        "Enter your name as reviewer in the sidebar before saving.",
    ),
    "store_failed": ("无法打开数据库：{message}", "cannot open the database: {message}"),
    "templates_failed": (
        "无法载入环境变量 HUKA_TEMPLATE_DIRS 指定的模板目录：{message}",
        "cannot load the template folders named in HUKA_TEMPLATE_DIRS: {message}",
    ),
    "queue_title": ("待审核队列", "Review queue"),
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
    "back_to_queue": ("← 返回队列", "← Back to queue"),
    "card_heading": ("卡片 {card_id}", "Card {card_id}"),
    "card_meta": (
        "批次 {batch} · 文件 {source} 第 {page} 页 · 类型 {card_type} · 状态 {status} · 版本 {version}",
        "batch {batch} · file {source} page {page} · type {card_type} · status {status} · version {version}",
    ),
    "card_not_found": ("卡片 {card_id} 不存在，已返回队列。", "Card {card_id} was not found; back to the queue."),
    "card_reasons": ("整张卡片的问题", "Problems of the whole card"),
    "candidates": ("候选值", "Candidates"),
    "scan": ("扫描图（红框：待核字段，绿框：已通过）", "Scan (red: needs review, green: passed)"),
    "scan_missing": ("找不到扫描图 {path}。", "The scan image {path} was not found."),
    "flagged_heading": ("待核字段（{count}）", "Flagged fields ({count})"),
    "no_flagged": (
        "没有待核字段。核对其余字段后即可审核通过。",
        "No field is flagged. Check the other fields, then approve.",
    ),
    "no_box": ("（无位置）", "(no position)"),
    "other_fields": ("其他字段（{count}）", "Other fields ({count})"),
    "save": ("保存修改", "Save corrections"),
    "approve": ("审核通过", "Approve"),
    "reject_heading": ("退回", "Reject"),
    "reject_kind": ("退回原因", "Reason"),
    "reject_rescan": ("重新扫描", "Rescan"),
    "reject_front_desk": ("退回前台补填", "Return to front desk to fill blanks"),
    "reject_note": ("备注", "Note"),
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
    "not_reviewable": (
        "此卡片当前状态为「{status}」，不在待审核范围内，不能修改。",
        "This card is {status} and cannot be changed here.",
    ),
    "reason_codes": ("问题代码：{codes}", "problem codes: {codes}"),
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
