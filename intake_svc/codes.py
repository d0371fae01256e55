"""Code tables of intake: content categories and channels (信访形式)."""
from __future__ import annotations

#: The 17 classic first-level content categories (内容分类).
CATEGORIES: tuple[str, ...] = (
    "农村农业", "国土资源", "城乡建设", "劳动和社会保障", "卫生计生", "教育文体", "民政", "政法",
    "经济管理", "交通运输", "商贸旅游", "科技与信息产业", "环境保护", "党务政务", "组织人事",
    "纪检监察", "其他",
)

#: Channels (信访形式) and the hotline/mailbox sources systems also record.
CHANNELS: tuple[str, ...] = ("网上信访", "来信", "来电", "传真", "来访", "12345热线", "领导信箱")
