"""Code tables of intake (编码表): content categories, channels and regions.

``CATEGORIES`` and ``CHANNELS`` are plain tuples, importable at no cost.  The
full tables load on demand (nothing happens at import time):

* :class:`intake_svc.codes.categories.CategoryTable` — the versioned content
  category table (内容分类) from ``categories.yaml``, classic codes plus the
  newer department-style names (新版分类名称) folded into them;
* :class:`intake_svc.codes.regions.RegionTable` — GB/T 2260 region codes
  (行政区划代码) and township codes (乡镇街道) from ``regions.tsv.gz``.
"""
from __future__ import annotations

#: The 17 classic first-level content categories (内容分类), in code order "01".."17".
CATEGORIES: tuple[str, ...] = (
    "农村农业", "国土资源", "城乡建设", "劳动和社会保障", "卫生计生", "教育文体", "民政", "政法",
    "经济管理", "交通运输", "商贸旅游", "科技与信息产业", "环境保护", "党务政务", "组织人事",
    "纪检监察", "其他",
)

#: Channels (信访形式) and the hotline/mailbox sources systems also record.
CHANNELS: tuple[str, ...] = ("网上信访", "来信", "来电", "传真", "来访", "12345热线", "领导信箱")

__all__ = ["CATEGORIES", "CHANNELS"]
