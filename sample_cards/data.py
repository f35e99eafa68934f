"""Word lists the value generator draws from: names, countries, places, ports.

All names and companies are invented combinations of common words, so no
generated card describes a real person.
"""

from __future__ import annotations

__all__ = [
    "ADDRESS_REGIONS",
    "AIRPORTS",
    "CHINESE_GIVEN_FEMALE",
    "CHINESE_GIVEN_MALE",
    "CHINESE_SURNAMES",
    "CHINESE_SURNAME_FOR_LATIN",
    "COUNTRIES",
    "ETHNICITIES",
    "HONG_KONG_PORTS",
    "KANJI_SURNAMES",
    "LATIN_NAMES",
    "MACAO_PORTS",
    "NATIONALITY_ALIASES",
    "RECEIVING_UNITS",
    "STREET_NAMES",
    "TAIWAN_PORTS",
]

CHINESE_SURNAMES = (
    "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡余杜叶程苏魏吕丁任沈姚卢姜崔钟谭陆汪范金石廖贾夏韦付方白邹孟熊秦邱江尹薛闫段雷侯龙史陶黎贺顾毛郝龚邵万钱严覃武戴莫孔向汤"
)
CHINESE_GIVEN_MALE = (
    "伟", "强", "磊", "军", "洋", "勇", "杰", "涛", "明", "超", "刚", "平", "辉", "鹏", "华", "飞", "鑫", "波", "斌", "宇",
    "浩", "凯", "健", "俊", "帆", "帅", "旭", "宁", "龙", "林", "志强", "建华", "国平", "文博", "子轩", "浩然", "宇航",
    "俊杰", "明辉", "志伟", "海峰", "建军", "晓东", "家豪", "嘉诚", "伟明", "志明", "国华", "永康", "天佑",
)
CHINESE_GIVEN_FEMALE = (
    "芳", "娜", "敏", "静", "丽", "艳", "娟", "霞", "燕", "玲", "婷", "雪", "琳", "颖", "倩", "洁", "慧", "蕾", "薇", "晶",
    "秀英", "桂英", "丽华", "玉兰", "美玲", "欣怡", "梓涵", "诗琪", "雨桐", "佳怡", "晓燕", "海燕", "婉婷", "嘉欣", "淑芬",
    "雅婷", "思颖", "美华", "丽珍", "慧敏",
)

# Ethnic groups without the 族 suffix, weighted roughly by population share.
ETHNICITIES = (
    ("汉", 85), ("回", 2), ("满", 2), ("壮", 2), ("蒙古", 1), ("维吾尔", 1), ("苗", 1), ("土家", 1), ("藏", 1),
    ("朝鲜", 1), ("彝", 1), ("侗", 1), ("白", 1),
)

# Administrative division codes (GB/T 2260) with the matching address prefix.
ADDRESS_REGIONS = (
    ("110101", "北京市东城区"),
    ("110105", "北京市朝阳区"),
    ("310104", "上海市徐汇区"),
    ("310115", "上海市浦东新区"),
    ("120101", "天津市和平区"),
    ("500103", "重庆市渝中区"),
    ("440106", "广东省广州市天河区"),
    ("440305", "广东省深圳市南山区"),
    ("330106", "浙江省杭州市西湖区"),
    ("320102", "江苏省南京市玄武区"),
    ("320505", "江苏省苏州市虎丘区"),
    ("510107", "四川省成都市武侯区"),
    ("420106", "湖北省武汉市武昌区"),
    ("610113", "陕西省西安市雁塔区"),
    ("370202", "山东省青岛市市南区"),
    ("210102", "辽宁省沈阳市和平区"),
    ("350203", "福建省厦门市思明区"),
    ("430104", "湖南省长沙市岳麓区"),
    ("410105", "河南省郑州市金水区"),
    ("530102", "云南省昆明市五华区"),
    ("450103", "广西壮族自治区南宁市青秀区"),
    ("640104", "宁夏回族自治区银川市兴庆区"),
    ("150102", "内蒙古自治区呼和浩特市新城区"),
    ("650102", "新疆维吾尔自治区乌鲁木齐市天山区"),
    ("230103", "黑龙江省哈尔滨市南岗区"),
)
STREET_NAMES = (
    "人民路", "解放路", "中山路", "建设路", "和平路", "新华路", "长江路", "南京路", "文化路", "胜利路", "青年路", "光明街",
    "幸福路", "朝阳路", "学府路", "滨江路", "东风路", "复兴路", "民主路", "友谊路",
)

RECEIVING_UNITS = (
    "中国国际旅行社", "上海春秋国际旅行社", "中青旅控股", "携程旅行网", "本市外事办公室", "华东贸易有限公司",
    "东方电子科技有限公司", "海天国际会展中心", "市人民政府外事办", "复兴大学国际交流处", "星辰机械制造有限公司",
    "远洋物流有限公司",
)

# Per country: English name, Chinese name, share of guests, and which name
# list and passport pattern apply. Passport patterns: "L" a capital letter,
# "D" a digit, "A" a letter or digit.
COUNTRIES: dict[str, dict] = {
    "USA": {"en": "UNITED STATES", "zh": "美国", "weight": 12, "names": "english", "passport": ("DDDDDDDDD", "LDDDDDDDD")},
    "JPN": {"en": "JAPAN", "zh": "日本", "weight": 12, "names": "japanese", "passport": ("LLDDDDDDD",)},
    "KOR": {"en": "REPUBLIC OF KOREA", "zh": "韩国", "weight": 12, "names": "korean", "passport": ("MDDDDDDDD", "MDDDLDDDD")},
    "DEU": {"en": "GERMANY", "zh": "德国", "weight": 7, "names": "german", "passport": ("CAAAAAAAA",)},
    "GBR": {"en": "UNITED KINGDOM", "zh": "英国", "weight": 6, "names": "english", "passport": ("DDDDDDDDD",)},
    "FRA": {"en": "FRANCE", "zh": "法国", "weight": 6, "names": "french", "passport": ("DDLLDDDDD",)},
    "RUS": {"en": "RUSSIA", "zh": "俄罗斯", "weight": 7, "names": "russian", "passport": ("DDDDDDDDD",)},
    "AUS": {"en": "AUSTRALIA", "zh": "澳大利亚", "weight": 5, "names": "english", "passport": ("LDDDDDDD", "PADDDDDDD")},
    "CAN": {"en": "CANADA", "zh": "加拿大", "weight": 5, "names": "english", "passport": ("LLDDDDDD",)},
    "SGP": {"en": "SINGAPORE", "zh": "新加坡", "weight": 5, "names": "cantonese", "passport": ("KDDDDDDDL", "EDDDDDDDL")},
    "ITA": {"en": "ITALY", "zh": "意大利", "weight": 2, "names": "italian", "passport": ("LLDDDDDDD",)},
    "THA": {"en": "THAILAND", "zh": "泰国", "weight": 2, "names": "thai", "passport": ("LLDDDDDDD",)},
    "HKG": {"en": "HONG KONG", "zh": "中国香港", "weight": 10, "names": "cantonese", "passport": ()},
    "MAC": {"en": "MACAO", "zh": "中国澳门", "weight": 4, "names": "cantonese", "passport": ()},
    "TWN": {"en": "TAIWAN", "zh": "中国台湾", "weight": 7, "names": "taiwanese", "passport": ()},
}

# Other ways the nationality is written on real cards, besides code, "en" and "zh".
NATIONALITY_ALIASES = {
    "USA": ("U.S.A.", "America"),
    "KOR": ("韩国", "South Korea"),
    "GBR": ("UK", "Britain"),
    "HKG": ("香港",),
    "MAC": ("澳门",),
    "TWN": ("台湾",),
}

# Latin names by language: (surnames, male given names, female given names).
LATIN_NAMES: dict[str, tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...]]] = {
    "english": (
        ("SMITH", "JOHNSON", "WILLIAMS", "BROWN", "JONES", "MILLER", "DAVIS", "WILSON", "TAYLOR", "ANDERSON", "THOMAS",
         "MOORE", "MARTIN", "THOMPSON", "WHITE", "CLARK", "LEWIS", "WALKER", "HALL", "YOUNG", "KING", "WRIGHT", "SCOTT",
         "GREEN", "BAKER", "ADAMS", "CAMPBELL", "MITCHELL", "ROBERTS", "MURPHY"),
        ("JOHN", "JAMES", "ROBERT", "MICHAEL", "WILLIAM", "DAVID", "RICHARD", "THOMAS", "DANIEL", "MATTHEW", "ANDREW",
         "JOSHUA", "BRIAN", "KEVIN", "JOHN PAUL", "PETER JAMES", "RYAN", "NATHAN", "LIAM", "OLIVER"),
        ("MARY", "JENNIFER", "LINDA", "ELIZABETH", "SUSAN", "JESSICA", "SARAH", "KAREN", "EMILY", "EMMA", "OLIVIA",
         "CHARLOTTE", "AMELIA", "GRACE", "ANNA MARIE", "SOPHIE", "CHLOE", "LAURA", "RACHEL", "HANNAH"),
    ),
    "japanese": (
        ("SATO", "SUZUKI", "TAKAHASHI", "TANAKA", "WATANABE", "ITO", "YAMAMOTO", "NAKAMURA", "KOBAYASHI", "KATO",
         "YOSHIDA", "YAMADA", "SASAKI", "YAMAGUCHI", "MATSUMOTO", "INOUE", "KIMURA", "HAYASHI", "SHIMIZU", "MORI"),
        ("HIROSHI", "TAKESHI", "KENJI", "DAISUKE", "SHOTA", "YUTO", "HARUTO", "KAZUKI", "TAKUYA", "RYOTA", "SHINJI",
         "YUSUKE", "NAOKI", "KOJI", "MASAHIRO"),
        ("YUKI", "HARUKA", "AYAKA", "MISAKI", "NANAMI", "SAKURA", "YUI", "AOI", "MAI", "EMI", "KEIKO", "TOMOKO",
         "NAOMI", "RIE", "MEGUMI"),
    ),
    "korean": (
        ("KIM", "LEE", "PARK", "CHOI", "JUNG", "KANG", "CHO", "YOON", "JANG", "LIM", "HAN", "OH", "SEO", "SHIN", "KWON"),
        ("MINJUN", "SEOJUN", "DOYUN", "JIHO", "JUNWOO", "HYUNWOO", "SUNGMIN", "JAEHYUN", "DONGHYUN", "MIN HO",
         "SANG WOO", "JI HOON"),
        ("SEOYEON", "JIWOO", "HAYOON", "SOYEON", "MINJI", "YUNA", "EUNJI", "JIYEON", "HYEJIN", "SU JIN", "MIN KYUNG",
         "YE JIN"),
    ),
    "german": (
        ("MUELLER", "SCHMIDT", "SCHNEIDER", "FISCHER", "WEBER", "MEYER", "WAGNER", "BECKER", "SCHULZ", "HOFFMANN",
         "KOCH", "RICHTER", "KLEIN", "WOLF", "SCHROEDER", "NEUMANN", "BRAUN", "ZIMMERMANN"),
        ("LUKAS", "JONAS", "FELIX", "MAXIMILIAN", "STEFAN", "ANDREAS", "MARKUS", "THOMAS", "JUERGEN", "KLAUS",
         "HANS PETER", "MATTHIAS", "TOBIAS"),
        ("ANNA", "LENA", "HANNAH", "SABINE", "ANDREA", "CLAUDIA", "KATHARINA", "JULIA", "LAURA", "PETRA",
         "ANNA LENA", "MONIKA"),
    ),
    "french": (
        ("MARTIN", "BERNARD", "DUBOIS", "THOMAS", "ROBERT", "RICHARD", "PETIT", "DURAND", "LEROY", "MOREAU", "SIMON",
         "LAURENT", "LEFEBVRE", "MICHEL", "GARCIA", "DAVID", "BERTRAND", "ROUX", "FOURNIER", "GIRARD"),
        ("JEAN", "PIERRE", "MICHEL", "NICOLAS", "JULIEN", "THOMAS", "ANTOINE", "LUCAS", "HUGO", "LOUIS",
         "JEAN PIERRE", "FRANCOIS", "OLIVIER"),
        ("MARIE", "CAMILLE", "LEA", "MANON", "CHLOE", "SOPHIE", "ISABELLE", "NATHALIE", "CELINE", "JULIE",
         "MARIE CLAIRE", "AMELIE"),
    ),
    "russian": (
        ("IVANOV", "SMIRNOV", "KUZNETSOV", "POPOV", "VASILIEV", "PETROV", "SOKOLOV", "MIKHAILOV", "NOVIKOV",
         "FEDOROV", "MOROZOV", "VOLKOV", "ALEKSEEV", "LEBEDEV", "SEMENOV", "EGOROV", "PAVLOV", "KOZLOV"),
        ("ALEKSANDR", "SERGEI", "DMITRII", "ANDREI", "ALEKSEI", "MAKSIM", "IVAN", "NIKOLAI", "MIKHAIL", "VLADIMIR",
         "PAVEL", "ARTEM", "IGOR"),
        ("ANASTASIIA", "ELENA", "OLGA", "NATALIA", "TATIANA", "IRINA", "SVETLANA", "MARIIA", "EKATERINA", "ANNA",
         "DARIA", "IULIIA"),
    ),
    "italian": (
        ("ROSSI", "RUSSO", "FERRARI", "ESPOSITO", "BIANCHI", "ROMANO", "COLOMBO", "RICCI", "MARINO", "GRECO",
         "BRUNO", "GALLO", "CONTI", "DE LUCA"),
        ("MARCO", "ALESSANDRO", "GIUSEPPE", "LUCA", "MATTEO", "FRANCESCO", "ANDREA", "LORENZO", "GIOVANNI", "PAOLO"),
        ("GIULIA", "FRANCESCA", "CHIARA", "SARA", "MARTINA", "ELENA", "ALESSIA", "VALENTINA", "SOFIA", "FEDERICA"),
    ),
    "thai": (
        ("SRISUK", "CHAIYAPORN", "SUKSAWAT", "WONGSAKUL", "BOONMA", "SAETANG", "RATTANAKUL", "PHROMMA",
         "KAEWKLA", "THONGDEE"),
        ("SOMCHAI", "SOMSAK", "ANAN", "KITTISAK", "PRASERT", "WICHAI", "NATTAPONG", "THANAKORN"),
        ("SOMPORN", "MALEE", "SUDA", "NARUMON", "KANYA", "PIMCHANOK", "ARUNEE", "SIRIPORN"),
    ),
    "cantonese": (
        ("CHAN", "WONG", "LEUNG", "LAU", "CHEUNG", "LEE", "NG", "HO", "LAM", "TANG", "CHEUNG", "YEUNG", "TSANG",
         "CHOW", "LEONG", "KWOK", "TAN", "LIM", "TEO", "ONG"),
        ("TAI MAN", "KA HO", "CHI KEUNG", "WAI MING", "KWOK WAH", "SIU LUNG", "CHUN KIT", "HO YIN", "WING KEI",
         "KIN WAI", "WEI MING", "JUN JIE"),
        ("MEI LING", "SIU MAN", "WAI YEE", "KA YAN", "HOI TING", "SUK YEE", "PUI SHAN", "YUK LAN", "MAN YEE",
         "HUI MIN", "XIN YI"),
    ),
    "taiwanese": (
        ("CHEN", "LIN", "HUANG", "CHANG", "LI", "WANG", "WU", "LIU", "TSAI", "YANG", "HSU", "CHENG", "HSIEH", "KUO",
         "HUNG"),
        ("CHIH MING", "CHUN HUNG", "CHIA HAO", "KUAN YU", "WEN HSIUNG", "CHENG EN", "YU TING", "TSUNG HAN", "PO WEI",
         "SHIH CHIEH"),
        ("SHU FEN", "MEI HUI", "YA TING", "HSIU YING", "CHIA YI", "YI CHUN", "PEI SHAN", "HUI CHUN", "YU HSUAN",
         "CHING WEN"),
    ),
}

# Chinese characters matching the romanised surnames of HK, Macao, Taiwan and
# Singapore guests, so a written Chinese name agrees with the Latin one.
CHINESE_SURNAME_FOR_LATIN = {
    "CHAN": "陈", "WONG": "黄", "LEUNG": "梁", "LAU": "刘", "CHEUNG": "张", "LEE": "李", "NG": "吴", "HO": "何",
    "LAM": "林", "TANG": "邓", "YEUNG": "杨", "TSANG": "曾", "CHOW": "周", "LEONG": "梁", "KWOK": "郭", "TAN": "陈",
    "LIM": "林", "TEO": "张", "ONG": "王", "CHEN": "陈", "LIN": "林", "HUANG": "黄", "CHANG": "张", "LI": "李",
    "WANG": "王", "WU": "吴", "LIU": "刘", "TSAI": "蔡", "YANG": "杨", "HSU": "许", "CHENG": "郑", "HSIEH": "谢",
    "KUO": "郭", "HUNG": "洪",
}

# Japanese family names that are also ordinary Chinese characters.
KANJI_SURNAMES = {
    "SATO": "佐藤", "SUZUKI": "铃木", "TAKAHASHI": "高桥", "TANAKA": "田中", "WATANABE": "渡边", "ITO": "伊藤",
    "YAMAMOTO": "山本", "NAKAMURA": "中村", "KOBAYASHI": "小林", "KATO": "加藤", "YOSHIDA": "吉田", "YAMADA": "山田",
    "SASAKI": "佐佐木", "YAMAGUCHI": "山口", "MATSUMOTO": "松本", "INOUE": "井上", "KIMURA": "木村", "HAYASHI": "林",
    "SHIMIZU": "清水", "MORI": "森",
}

# Ports of entry: (as written in Chinese, IATA or short Latin form).
AIRPORTS = (
    ("上海浦东", "PVG"), ("北京首都", "PEK"), ("北京大兴", "PKX"), ("广州白云", "CAN"), ("深圳宝安", "SZX"),
    ("成都天府", "TFU"), ("杭州萧山", "HGH"), ("厦门高崎", "XMN"), ("青岛胶东", "TAO"), ("上海虹桥", "SHA"),
)
HONG_KONG_PORTS = ("罗湖", "深圳湾", "皇岗", "福田", "西九龙", "港珠澳大桥", "落马洲")
MACAO_PORTS = ("拱北", "横琴", "港珠澳大桥", "青茂")
TAIWAN_PORTS = ("厦门高崎", "上海浦东", "福州长乐", "厦门五通", "北京首都")
