"""What the simulated community is made of: themes, channels, staff, names, texts, products.

Data only; `generator.py` decides who says what and when. The texts follow the seed articles'
picture of a brand's private-domain groups: value content and check-ins from staff, member
chatter and questions, welcome messages, product pushes, spam ads that get removed.
"""

from __future__ import annotations

from dataclasses import dataclass

BRAND = "禾木"

# --- Channels (渠道活码) ---------------------------------------------------------------------


@dataclass(frozen=True)
class Channel:
    """A channel code and how the people it brings in behave."""

    code: str
    weight: float  # share of channel-driven arrivals on an ordinary day
    quality: float  # multiplies a member's chat activity
    leave: float  # probability of quitting the first group within the window
    buy: float  # multiplies purchase propensity
    via_contact: float  # share who add a staff contact first and are then pulled into a group
    hours: str  # time-of-day profile of arrivals: "day", "evening", "store"


CHANNELS: tuple[Channel, ...] = (
    Channel("douyin_live", 0.20, 0.55, 0.45, 0.7, 0.25, "evening"),
    Channel("xhs_note", 0.16, 1.15, 0.16, 1.1, 0.60, "day"),
    Channel("offline_store", 0.13, 1.25, 0.10, 1.5, 0.70, "store"),
    Channel("gzh_menu", 0.09, 1.05, 0.14, 1.0, 0.30, "day"),
    Channel("gzh_article", 0.06, 1.00, 0.20, 0.9, 0.30, "day"),
    Channel("package_card", 0.09, 0.90, 0.15, 1.7, 0.90, "day"),
    Channel("sph_live", 0.06, 0.80, 0.30, 0.9, 0.30, "evening"),
    Channel("moments_ad", 0.05, 0.50, 0.50, 0.5, 0.50, "day"),
)
# Days of the week (Monday = 0) the brand goes live on Douyin / Channels: their codes spike.
LIVE_DAYS = {"douyin_live": (1, 3, 5), "sph_live": (2, 6)}

# --- Time of day ---------------------------------------------------------------------------

# Relative weight of each local hour 0..23.
HOURS_GENERAL = (
    0.6, 0.3, 0.15, 0.1, 0.1, 0.2, 0.6, 1.5, 2.5, 3.0, 3.0, 3.0,
    3.5, 3.0, 2.5, 2.5, 2.5, 2.6, 3.0, 3.5, 4.5, 5.0, 4.0, 2.0,
)  # fmt: skip
HOURS_MORNING_EVENING = (
    0.3, 0.1, 0.05, 0.05, 0.1, 0.8, 3.0, 4.5, 3.5, 2.0, 1.5, 1.5,
    2.5, 2.0, 1.5, 1.5, 1.8, 2.5, 3.5, 4.5, 5.0, 4.5, 3.0, 1.2,
)  # fmt: skip
HOURS_LATE_NIGHT = (
    1.5, 1.0, 0.6, 0.4, 0.3, 0.4, 1.0, 2.0, 2.5, 3.0, 3.0, 2.5,
    2.5, 3.0, 3.0, 2.5, 2.0, 2.0, 2.0, 2.5, 3.5, 4.5, 5.0, 3.5,
)  # fmt: skip
HOURS_EVENING = (
    0.5, 0.2, 0.05, 0.05, 0.05, 0.05, 0.1, 0.2, 0.3, 0.3, 0.4, 0.4,
    0.6, 0.5, 0.4, 0.4, 0.5, 0.6, 1.0, 3.0, 8.0, 9.0, 7.0, 3.0,
)  # fmt: skip
HOURS_STORE = (
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0.5, 2.0, 3.0,
    3.0, 3.0, 3.0, 3.0, 3.0, 3.5, 4.0, 4.0, 3.5, 2.0, 0.3, 0,
)  # fmt: skip
# Monday..Sunday: how likely a member is to open the group that day.
WEEKDAY_ACTIVITY = (0.95, 0.97, 0.98, 1.0, 0.95, 1.12, 1.08)
WEEKDAY_JOINS = (0.95, 1.0, 1.0, 1.0, 1.05, 1.15, 1.1)

# --- Themes ---------------------------------------------------------------------------------

Product = tuple[str, str, int]  # sku, name, price in fen


@dataclass(frozen=True)
class Theme:
    """One kind of group: its name, rhythm, texts and products."""

    key: str
    name_fmt: str  # "{n}" is the group number within the theme
    activity: float
    buy: float
    spam: float
    female: float
    hours: tuple[float, ...]
    kinds: tuple[tuple[str, float], ...]
    chat: tuple[str, ...]
    questions: tuple[str, ...]
    answers: tuple[str, ...]
    staff_posts: tuple[str, ...]
    intros: tuple[str, ...]
    notice: str
    products: tuple[Product, ...]
    checkin: tuple[str, ...] = ()


_KINDS_CHAT = (("text", 0.78), ("image", 0.1), ("sticker", 0.07), ("voice", 0.025),
               ("link", 0.01), ("video", 0.01), ("red_packet", 0.003), ("file", 0.002))  # fmt: skip
_KINDS_PHOTO = (("text", 0.62), ("image", 0.26), ("sticker", 0.06), ("video", 0.04),
                ("voice", 0.02))  # fmt: skip
_KINDS_DEALS = (("text", 0.6), ("mini_program", 0.12), ("link", 0.1), ("image", 0.1),
                ("sticker", 0.05), ("red_packet", 0.03))  # fmt: skip

# fmt: off
THEMES: tuple[Theme, ...] = (
    Theme(
        key="mom",
        name_fmt=BRAND + "·宝妈交流{n}群",
        activity=1.3, buy=1.25, spam=1.0, female=0.94,
        hours=HOURS_LATE_NIGHT, kinds=_KINDS_CHAT,
        chat=(
            "宝宝今天终于肯吃辅食了，感动哭", "我家的也是，一到晚上就闹觉", "夜奶太熬人了，有没有一起的",
            "今天带娃去打疫苗，哭了一路", "这个湿巾我回购第三次了，确实好用", "推荐大家试试蒸苹果泥，宝宝超爱",
            "刚哄睡，终于有点自己的时间了", "出牙期流口水好厉害，围兜一天换好几个",
            "我家宝宝8个月了，还不会爬，正常吗", "早上六点就醒了，根本睡不了懒觉", "同款纸尿裤，没有红屁屁",
            "周末带娃去公园晒太阳了", "今天第一次叫妈妈了！", "宝宝湿疹又犯了，心疼", "辅食机到了，明天开始做",
            "你们宝宝都几点睡呀", "我们小区有个早教中心，准备去试听", "老公带娃就是看手机哈哈哈",
            "这周的育儿直播回放在哪里看", "收到试用装了，谢谢群主", "有人一起拼纸尿裤吗", "哈哈哈同感",
            "太真实了", "抱抱，都会过去的", "羡慕，我家的从来不午睡", "学到了，谢谢分享",
        ),
        questions=(
            "请问宝宝几个月可以吃蛋黄？", "湿疹用什么护肤霜比较好？", "纸尿裤L码大概多重可以穿？",
            "辅食要不要加盐啊？", "宝宝便秘怎么办，有经验的姐妹吗？", "这个奶粉是几段的？",
            "请问上次说的育儿讲座什么时候开始？", "优惠券在哪里领？", "订单什么时候发货呀？",
        ),
        answers=(
            "一般建议满6个月后逐步添加，先从米粉开始哦", "亲，可以先做好保湿，严重的话建议就医",
            "L码一般适合9-14kg，具体看宝宝腿围哈", "1岁前辅食不建议加盐的", "已私信您，请查收~",
            "讲座今晚8点，在群里直播，记得准时来", "优惠券在群公告的小程序里领取哦", "今天下午就安排发货啦",
        ),
        staff_posts=(
            "【育儿小课堂】6-8个月宝宝辅食添加顺序，建议收藏👇", "今晚8点儿科医生直播答疑，有问题提前在群里留言",
            "【新品试用】宝宝洗护套装试用装开放申请，名额有限", "宝妈们早上好，今天天气转凉，注意给宝宝添衣哦",
            "【团购】纸尿裤整箱团购今晚开团，群内专享价", "本周育儿话题：你是怎么哄睡的？欢迎分享经验🎁",
        ),
        intros=(
            "大家好，我是新来的，宝宝{m}个月了", "大家好，二胎妈妈报到，大宝5岁二宝{m}个月",
            "姐妹们好，孕{m}月准妈妈来学习了", "hello，朋友推荐进群的，宝宝刚满{m}个月",
        ),
        notice="【群规】1. 本群为宝妈交流群，禁止发广告、拉人头；2. 每周三晚8点育儿直播；"
        "3. 有问题@客服，工作日9:00-21:00在线。",
        products=(
            ("HM-DIAPER-L", "纸尿裤L码 54片", 12900), ("HM-WIPES-80", "婴儿湿巾 80抽×6包", 3990),
            ("HM-RICE-1", "有机高铁米粉 225g", 6800), ("HM-CREAM", "婴儿保湿霜 50g", 8900),
            ("HM-BATH-SET", "宝宝洗护套装", 15800), ("HM-BIB-3", "防水围兜 3条装", 2990),
        ),
    ),
    Theme(
        key="reading",
        name_fmt=BRAND + "读书会{n}群",
        activity=1.0, buy=0.6, spam=0.6, female=0.66,
        hours=HOURS_GENERAL, kinds=_KINDS_CHAT,
        chat=(
            "今天读完了第三章，作者说的自我接纳很有启发", "这本书前半部分有点难读，坚持下来就好了",
            "摘抄一句：生活不是等待风暴过去，而是学会在雨中跳舞", "上周的共读笔记整理好了，放在群文件里",
            "推荐一本《置身事内》，讲经济讲得很透", "同意楼上，这一段我也反复看了好几遍",
            "晚上听了领读老师的分享，收获很多", "最近工作忙，落下了两天，周末补上", "电子书和纸质书你们更喜欢哪个",
            "读书的意义就在于此吧", "哈哈哈，我也是睡前读两页就睡着了", "谢谢领读老师", "这个观点很有意思",
        ),
        questions=(
            "请问这个月共读的是哪本书？", "读书笔记要交到哪里？", "年卡会员有什么权益？",
            "错过了昨天的分享，有回放吗？", "纸质书在哪里买有优惠？",
        ),
        answers=(
            "本月共读书目在群公告里，欢迎一起读", "笔记发在群里就可以，领读老师会点评", "回放已上传，点群公告链接观看",
            "年卡包含全年共读、线下沙龙和电子书包，详情私聊我", "群内专属链接购书有8折优惠",
        ),
        staff_posts=(
            "【今日共读】第{d}天：请大家读完本章后在群里打卡分享一句最有感触的话📖",
            "【领读分享】今晚9点语音分享，主题：如何建立长期阅读习惯", "【书单】11月推荐书单已更新，欢迎收藏",
            "早安，今天也要读一点书呀☕", "【线下读书沙龙】本周六下午2点，门店二楼，限20人，报名请接龙",
        ),
        intros=("大家好，我是新来的书友，喜欢读历史", "新人报到，希望能坚持每天读书", "大家好，朋友推荐来的，一起读书呀"),
        notice="【群公告】每日共读打卡，周日晚领读分享；请勿发与读书无关的链接，违者移出。",
        products=(
            ("RD-YEAR", "读书会年卡", 36500), ("RD-BOOK-1", "《被讨厌的勇气》纸质书", 4500),
            ("RD-EBOOK", "电子书包（50本）", 990), ("RD-SALON", "线下读书沙龙门票", 3900),
        ),
        checkin=(
            "打卡第{n}天📖 今天读了30页", "#读书打卡# Day{n} 读完第{c}章", "打卡✅ 第{n}天，今天的金句：知行合一",
            "第{n}天打卡，通勤路上读了半小时",
        ),
    ),
    Theme(
        key="fitness",
        name_fmt=BRAND + "健身打卡{n}群",
        activity=1.1, buy=0.9, spam=0.8, female=0.55,
        hours=HOURS_MORNING_EVENING, kinds=_KINDS_PHOTO,
        chat=(
            "今天练腿，明天估计下不了楼了", "坚持一个月了，腰围小了3厘米", "早上空腹跑了5公里，舒服",
            "蛋白粉冲牛奶会不会太腻", "今天偷懒了，明天补上", "有没有人一起约周末爬山", "教练的拉伸视频太有用了",
            "体脂终于降到25%以下了！", "减脂期晚饭吃什么好", "加油加油💪", "太自律了吧", "向大家学习",
        ),
        questions=(
            "新手从什么训练开始比较好？", "蛋白粉什么时候喝效果最好？", "膝盖不好能跳绳吗？",
            "瑜伽垫选多厚的？", "训练营怎么报名？",
        ),
        answers=(
            "新手建议先从自重训练开始，每周3次", "训练后30分钟内喝吸收比较好", "膝盖不好建议换成快走或游泳",
            "一般6-8mm就够了，家用推荐8mm", "训练营报名链接在群公告，本周日截止",
        ),
        staff_posts=(
            "【今日打卡主题】深蹲3组×15个，完成的在群里打卡💪", "【21天减脂训练营】第二期开始报名，前30名送弹力带",
            "早上好！运动前记得热身，今天的拉伸视频👇", "【饮食建议】减脂期一日三餐这样搭配",
        ),
        intros=("大家好，新人报到，想减10斤", "哈喽，刚开始健身，请多指教", "大家好，跑步三年了，来找组织"),
        notice="【群规】每日打卡，连续打卡21天有奖励；禁止广告、微商，违者踢出。",
        products=(
            ("FT-WHEY-2LB", "乳清蛋白粉 2磅", 19900), ("FT-MAT-8", "加厚瑜伽垫 8mm", 8900),
            ("FT-BAND", "弹力带套装", 3900), ("FT-CAMP-21", "21天减脂训练营", 19900),
        ),
        checkin=(
            "打卡第{n}天💪 深蹲完成", "Day{n} 跑步5公里✅", "打卡 第{n}天 平板支撑2分钟", "第{n}天打卡，今天练背",
        ),
    ),
    Theme(
        key="deals",
        name_fmt=BRAND + "福利{n}群",
        activity=0.45, buy=1.9, spam=2.2, female=0.72,
        hours=HOURS_GENERAL, kinds=_KINDS_DEALS,
        chat=(
            "抢到了！手速够快", "又没抢到，秒没了", "这个价格可以囤了", "已下单，坐等发货", "今晚几点开抢？",
            "上次买的收到了，质量不错", "求返场", "好划算", "冲冲冲", "谢谢群主的福利🙏", "优惠券领到了",
        ),
        questions=(
            "优惠券可以叠加吗？", "今天的秒杀链接在哪？", "这个能退吗？", "包邮吗？", "什么时候发货？",
        ),
        answers=(
            "群专属券可以和店铺满减叠加哦", "秒杀链接晚8点准时发在群里", "支持7天无理由退换",
            "全场包邮，偏远地区除外", "48小时内发货",
        ),
        staff_posts=(
            "【今晚8点秒杀】限量100份，群内专享价，定好闹钟⏰", "【福利】每日签到领积分，积分可兑换好礼",
            "【抽奖】今晚9点群内抽3位送试用装，参与方式：回复“想要”", "新人专享券已上线，点小程序领取👇",
            "【爆款返场】上周售罄的款补货了，手慢无",
        ),
        intros=("来领福利了", "朋友推荐来的，听说有秒杀", "大家好"),
        notice="【群公告】每晚8点秒杀，每周五抽奖；禁止发广告、拉人，违者直接移出。",
        products=(
            ("DL-TISSUE", "抽纸 24包整箱", 4990), ("DL-GIFT", "福利礼盒", 9900), ("DL-OIL", "山茶油 1L", 8800),
            ("DL-TRIAL", "试用装", 990), ("DL-SNACK", "零食大礼包", 5990),
        ),
    ),
    Theme(
        key="beauty",
        name_fmt=BRAND + "美妆护肤交流{n}群",
        activity=1.0, buy=1.35, spam=1.2, female=0.93,
        hours=HOURS_LATE_NIGHT, kinds=_KINDS_PHOTO,
        chat=(
            "换季皮肤好干，求推荐面霜", "这个精华用了两周，痘印淡了", "油皮真的不适合这款",
            "今天试了新口红色号，上嘴很显白", "防晒一定要涂！", "敏感肌姐妹看过来，这款很温和",
            "熬夜之后脸好暗沉", "种草了", "已下单同款", "哈哈哈我也是", "求链接",
        ),
        questions=(
            "敏感肌能用这款精华吗？", "精华和面霜的先后顺序是什么？", "这个色号黄皮适合吗？", "有小样可以试用吗？",
        ),
        answers=(
            "可以的，建议先在耳后做皮试", "先精华后面霜，由薄到厚", "黄皮推荐01号，更显白", "小样申请链接已发群公告",
        ),
        staff_posts=(
            "【护肤课堂】秋冬换季护肤三步走，建议收藏", "【新品】修护精华上新，群内前50名半价",
            "今晚9点美妆直播，现场教大家日常妆", "【晒单有礼】晒出使用效果，抽3位送正装",
        ),
        intros=("大家好，混油皮一枚", "新人报到，敏感肌求带", "姐妹们好，来学习护肤"),
        notice="【群规】本群为护肤交流群，分享真实体验；禁止广告、代购，违者移出。",
        products=(
            ("BT-SERUM", "修护精华 30ml", 29900), ("BT-CREAM", "保湿面霜 50g", 19900),
            ("BT-SUN", "清爽防晒 50ml", 12900), ("BT-MASK", "补水面膜 10片", 9900),
        ),
    ),
    Theme(
        key="coffee",
        name_fmt=BRAND + "咖啡同好{n}群",
        activity=0.9, buy=1.1, spam=0.8, female=0.55,
        hours=HOURS_GENERAL, kinds=_KINDS_PHOTO,
        chat=(
            "今天手冲的耶加雪菲，花香很明显", "挂耳真的方便，上班必备", "冷萃做好了，放冰箱一晚",
            "有没有人用过摩卡壶", "拉花又失败了哈哈", "早上不喝咖啡就没精神", "这款豆子偏酸，不太习惯",
        ),
        questions=("新手买什么磨豆机？", "挂耳怎么冲比较好喝？", "豆子怎么保存？"),
        answers=("入门推荐手摇磨豆机，性价比高", "水温92度左右，分三次注水", "密封避光保存，开封后两周内喝完"),
        staff_posts=(
            "【咖啡小课堂】手冲的水粉比怎么选", "【新豆上架】云南保山小粒咖啡，群内尝鲜价",
            "早安☕ 今天你喝的是哪一杯", "周六门店咖啡品鉴会，名额10人，接龙报名",
        ),
        intros=("大家好，咖啡爱好者一枚", "新人报到，每天两杯美式", "大家好，刚入坑手冲"),
        notice="【群公告】欢迎交流咖啡，禁止广告，违者移出。",
        products=(
            ("CF-DRIP-30", "挂耳咖啡 30片", 6900), ("CF-BEAN-500", "精品咖啡豆 500g", 12800),
            ("CF-GRINDER", "手摇磨豆机", 19900),
        ),
    ),
    Theme(
        key="baking",
        name_fmt=BRAND + "烘焙交流{n}群",
        activity=1.0, buy=0.9, spam=0.8, female=0.85,
        hours=HOURS_GENERAL, kinds=_KINDS_PHOTO,
        chat=(
            "第一次做戚风，成功了！", "蛋糕又塌了，哭", "面包发酵好慢，天冷了", "分享一下今天的曲奇",
            "黄油要软化到什么程度啊", "烤箱到了，开始学做蛋挞", "好漂亮！", "求配方",
        ),
        questions=("戚风为什么会回缩？", "低筋面粉可以用中筋代替吗？", "烤箱需要预热多久？"),
        answers=("一般是没烤熟或者蛋白打发不够", "可以加一点玉米淀粉代替", "一般预热10-15分钟"),
        staff_posts=(
            "【烘焙课堂】零失败戚风蛋糕配方👇", "【直播预告】周四晚8点教做圣诞姜饼", "【原料团购】黄油、奶油本周团购价",
        ),
        intros=("大家好，烘焙新手", "新人报到，家里刚买了烤箱", "大家好，做了三年烘焙"),
        notice="【群公告】分享作品和配方，禁止广告。",
        products=(
            ("BK-BUTTER", "动物黄油 454g", 5900), ("BK-FLOUR", "低筋面粉 2.5kg", 3990),
            ("BK-MOLD", "戚风模具套装", 4900),
        ),
    ),
    Theme(
        key="running",
        name_fmt=BRAND + "跑步打卡{n}群",
        activity=1.0, buy=0.8, spam=0.7, female=0.45,
        hours=HOURS_MORNING_EVENING, kinds=_KINDS_PHOTO,
        chat=(
            "今天配速6分，进步了", "周末有人约长距离吗", "下雨了，改跑步机", "膝盖有点疼，休息两天",
            "报名了明年的半马", "晨跑的空气真好", "厉害厉害", "一起加油",
        ),
        questions=("跑鞋多久换一双？", "跑前要吃东西吗？", "跑完怎么拉伸？"),
        answers=("一般跑800公里左右换", "跑前1小时可以少量进食", "拉伸视频在群公告里"),
        staff_posts=(
            "【打卡挑战】本月累计100公里，完成送定制奖牌", "周日早上7点西湖边约跑，集合点见群公告",
            "【跑步课堂】如何避免跑步膝",
        ),
        intros=("大家好，刚开始跑步", "新人报到，今年跑了两个半马", "大家好，想找人一起晨跑"),
        notice="【群公告】每天跑步打卡，月度排行榜前十有奖；禁止广告。",
        products=(("RN-SHOE", "缓震跑鞋", 49900), ("RN-BELT", "跑步腰包", 5900), ("RN-SOCK", "跑步袜 3双", 3900)),
        checkin=("打卡第{n}天🏃 今天5公里", "Day{n} 晨跑8公里✅", "第{n}天打卡，配速6分10"),
    ),
    Theme(
        key="pets",
        name_fmt=BRAND + "萌宠交流{n}群",
        activity=1.2, buy=1.0, spam=0.9, female=0.7,
        hours=HOURS_GENERAL, kinds=_KINDS_PHOTO,
        chat=(
            "我家猫今天又把杯子推下去了", "狗子洗完澡像换了一只", "晒一下我家主子", "猫粮换了新的，吃得很香",
            "太可爱了吧！", "想摸", "柯基屁股太萌了", "猫咪掉毛季，家里全是毛",
        ),
        questions=("猫咪多久驱虫一次？", "狗狗可以吃水果吗？", "这款猫粮适合幼猫吗？"),
        answers=("体内三个月一次，体外一个月一次", "少量苹果香蕉可以，葡萄不行", "这款是全阶段的，幼猫可以吃"),
        staff_posts=("【养宠小知识】秋季宠物掉毛怎么办", "【晒宠大赛】本周主题：睡姿，点赞最多送猫粮", "【新品】冻干零食试吃装"),
        intros=("大家好，两只猫的铲屎官", "新人报到，家有金毛一只", "大家好，刚领养了一只小猫"),
        notice="【群公告】晒宠交流，禁止广告和宠物买卖。",
        products=(("PT-FOOD-2KG", "全价猫粮 2kg", 15900), ("PT-SNACK", "冻干零食", 4900), ("PT-LITTER", "豆腐猫砂 6L×4", 6900)),
    ),
    Theme(
        key="local",
        name_fmt=BRAND + "杭州同城生活{n}群",
        activity=0.9, buy=0.9, spam=1.4, female=0.6,
        hours=HOURS_GENERAL, kinds=_KINDS_CHAT,
        chat=(
            "滨江这边今天堵死了", "周末有什么好玩的地方推荐", "新开的那家火锅店怎么样", "下雨了，记得带伞",
            "地铁又延误了", "门店周年庆有活动", "好的收到", "谢谢提醒",
        ),
        questions=("门店几点关门？", "周末活动需要预约吗？", "可以到店自提吗？"),
        answers=("门店营业到晚上9点半", "需要在小程序预约哦", "可以到店自提，下单时选自提"),
        staff_posts=("【门店活动】周年庆到店送好礼", "【同城福利】本周六亲子手工活动报名", "天气降温，出门注意保暖"),
        intros=("大家好，住滨江", "新人报到，西湖区的", "大家好，门店扫码进来的"),
        notice="【群公告】同城交流，到店自提请提前预约；禁止广告、中介。",
        products=(("LC-VOUCHER", "门店代金券 100元", 8800), ("LC-CLASS", "亲子手工课", 6900)),
    ),
    Theme(
        key="vip",
        name_fmt=BRAND + "VIP会员{n}群",
        activity=1.1, buy=2.2, spam=0.3, female=0.75,
        hours=HOURS_GENERAL, kinds=_KINDS_CHAT,
        chat=(
            "会员日的礼品收到了，好精致", "续费了，今年继续", "会员价确实划算", "上次的专属顾问服务很贴心",
            "期待下个月的新品", "谢谢", "好的", "已报名",
        ),
        questions=("会员积分怎么兑换？", "续费有优惠吗？", "会员日是每月几号？"),
        answers=("积分商城在小程序里", "老会员续费享8折", "每月18号是会员日"),
        staff_posts=("【会员日】18号会员专享价，全场8折", "【专属福利】VIP新品优先试用申请", "【积分兑换】本月积分商城上新"),
        intros=("大家好，刚开通会员", "老会员报到", "大家好"),
        notice="【VIP群公告】会员专属权益以小程序为准；请勿外传会员价。",
        products=(("VP-YEAR", "年度会员", 29900), ("VP-BOX", "会员礼盒", 19900), ("VP-RENEW", "会员续费", 26900)),
    ),
    Theme(
        key="swap",
        name_fmt=BRAND + "闲置交换{n}群",
        activity=0.15, buy=0.3, spam=1.8, female=0.6,
        hours=HOURS_GENERAL, kinds=_KINDS_PHOTO,
        chat=("出一个婴儿车，九成新", "求一个二手书架", "有人换吗", "已出"),
        questions=("还在吗？", "可以小刀吗？"),
        answers=("在的，私聊", "请私下沟通"),
        staff_posts=("【群规提醒】交易请注意安全，群内不担保", "本群闲置交换，欢迎发布"),
        intros=("大家好",),
        notice="【群公告】闲置交换请注明价格和区域；禁止商家广告。",
        products=(("SW-FEE", "闲置包邮券", 500),),
    ),
)
# fmt: on
THEME_BY_KEY = {t.key: t for t in THEMES}

# Which theme each group gets, repeated: big themes have several groups (1群, 2群, …).
GROUP_THEME_CYCLE = (
    "mom", "reading", "fitness", "deals", "beauty", "mom", "running", "pets", "deals", "coffee",
    "local", "mom", "baking", "vip", "reading", "fitness", "beauty", "deals", "swap", "pets",
    "mom", "running", "local", "beauty",
)  # fmt: skip
# Which themes a member's second group tends to be.
SECOND_GROUP_THEMES = ("deals", "deals", "deals", "vip", "local", "mom", "beauty", "coffee")

# --- Generic texts -------------------------------------------------------------------------

EMOJI_SUFFIX = (
    "", "", "", "", "", "", "", "", "", "～", "！", "😂", "👍", "[捂脸]", "[强]", "[玫瑰]", "[呲牙]", "🙏",
    "[偷笑]", "❤️",
)  # fmt: skip
GENERIC_CHAT = (
    "哈哈哈哈", "早上好", "晚安", "收到", "好的", "谢谢", "+1", "同问", "厉害了", "太好了", "有道理",
    "在的", "刚看到", "学习了", "支持", "我也想要", "好羡慕", "真不错", "笑死我了", "今天好冷啊",
    "周末愉快", "大家早", "冲鸭", "mark一下", "已收藏", "好的谢谢群主", "这个好", "求分享",
)  # fmt: skip
REPLIES = (
    "哈哈同感", "谢谢分享", "说得对", "我也是这样", "真的吗？", "学到了", "好厉害", "同问+1",
    "可以私聊吗", "抱抱", "我之前也遇到过", "赞同", "你说的对",
)  # fmt: skip
MENTION_TEMPLATES = (
    "@{name} 你家的也是这样吗",
    "@{name} 谢谢你的推荐",
    "@{name} 求链接",
    "@{name} 哈哈哈哈",
)

STAFF_MORNING = (
    "早安☀️ 新的一天，大家加油", "早上好！今天也要元气满满哦", "早安，今天降温了，大家注意保暖",
    "大家早上好，今日福利已更新在群公告", "早安～ 周末愉快", "早上好，今天的小课堂中午12点见",
)  # fmt: skip
STAFF_WELCOME = (
    "欢迎新朋友 {mentions} 入群🎉 进群请先看群公告哦~",
    "热烈欢迎 {mentions} 加入大家庭，有问题随时@我",
    "欢迎 {mentions}！新人专享券已发，点群公告小程序领取",
)  # fmt: skip
STAFF_SPAM_NOTICE = (
    "温馨提示：已移出发广告的账号，请大家不要添加陌生人私聊，谨防受骗",
    "提醒：本群禁止发广告，违者直接移出，感谢配合",
)  # fmt: skip
STAFF_EVENING = (
    "今晚8点群内直播，不见不散", "【今日福利】点击小程序领取专属优惠券", "大家晚安，明天见🌙",
    "今天的打卡别忘了哦", "【活动预告】本周五晚抽奖，记得来",
)  # fmt: skip

SPAM_NAMES = (
    "兼职招聘-小雅", "日结兼职", "代购小美", "微商团队招代理", "低价代充", "刷单返利", "免费领取", "理财顾问Lisa",
    "高仿名表", "征信修复",
)  # fmt: skip
SPAM_TEXTS = (
    "招聘兼职，在家手机操作，日结200-500，有意私聊",
    "低价代购正品大牌，比专柜便宜一半，加V详聊",
    "免费领取红包，点击链接即可 http://t.cn/xxxx",
    "刷单返利，一单一结，宝妈学生都可做",
    "需要征信修复、网贷逾期处理的私信我",
    "日赚300，不压货不囤货，加我了解",
    "点击领取618大额优惠券，限时",
)  # fmt: skip

# --- People ---------------------------------------------------------------------------------

SURNAMES = (
    "王", "李", "张", "刘", "陈", "杨", "黄", "赵", "吴", "周", "徐", "孙", "马", "朱", "胡", "郭", "何", "林",
    "罗", "高", "郑", "梁", "谢", "宋", "唐", "许", "韩", "冯", "邓", "曹",
)  # fmt: skip
NICK_WORDS = (
    "晴天", "小鱼儿", "向日葵", "木子", "阿狸", "柠檬不萌", "小确幸", "南风", "一只猫", "豆豆", "糖糖", "果果",
    "安然", "微笑", "花开", "知足常乐", "静待花开", "云朵", "星星", "麦兜", "橙子", "小太阳", "半夏", "清风",
    "阳光宝贝", "朵朵", "乐乐", "悠悠", "米粒", "西瓜", "叮当", "七七", "可乐", "布丁", "团子", "慢慢",
)  # fmt: skip
KID_NAMES = (
    "朵朵",
    "乐乐",
    "果果",
    "豆豆",
    "糖糖",
    "悠悠",
    "米粒",
    "可乐",
    "团团",
    "安安",
    "小宝",
    "嘟嘟",
)
ENGLISH_NAMES = (
    "Amy", "Lily", "Coco", "Vivian", "Grace", "Cindy", "Kevin", "Jason", "Eric", "Tony", "Jenny", "Lucy",
    "Cherry", "Sunny", "Anna", "Tina", "Helen", "Leo",
)  # fmt: skip
NAME_TAILS = ("", "", "", "", "🌸", "🍀", "✨", "🌙", "_", "~", "☀️")

CITIES = (
    ("杭州", 18), ("上海", 14), ("宁波", 6), ("苏州", 6), ("北京", 6), ("南京", 5), ("深圳", 5), ("广州", 5),
    ("成都", 4), ("武汉", 4), ("温州", 4), ("绍兴", 3), ("嘉兴", 3), ("合肥", 3), ("西安", 2), ("重庆", 2),
    ("长沙", 2), ("厦门", 2), ("天津", 1), ("郑州", 1), ("青岛", 1),
)  # fmt: skip
# Mobile prefixes of the three carriers (all valid CN mobile ranges).
PHONE_PREFIXES = (
    "130", "131", "132", "133", "135", "136", "137", "138", "139", "150", "151", "152", "153", "155",
    "156", "157", "158", "159", "166", "177", "180", "181", "182", "183", "185", "186", "187", "188",
    "189", "191", "198", "199",
)  # fmt: skip
LEVELS = ("普通会员", "银卡", "金卡", "钻石卡")

# (id, display name); a workspace gets as many as it needs (cycled with a number).
STAFF = (
    ("staff_xiaolu", BRAND + "-小鹿（运营）"),
    ("staff_amei", BRAND + "-阿梅（客服）"),
    ("staff_linda", BRAND + "-Linda（导购）"),
    ("staff_wangls", BRAND + "-王老师"),
    ("staff_chenjl", BRAND + "-陈教练"),
    ("staff_tangtang", BRAND + "-糖糖（客服）"),
    ("staff_azhe", BRAND + "-阿哲（运营）"),
    ("staff_momo", BRAND + "-默默（导购）"),
    ("staff_xiaoyu", BRAND + "-小雨（运营）"),
    ("staff_dage", BRAND + "-大葛（店长）"),
)

# --- Shopping days --------------------------------------------------------------------------


@dataclass(frozen=True)
class ShoppingDay:
    """A festival that lifts joins and orders: the day itself, a pre-heat before, a tail after."""

    month: int
    day: int
    campaign: str  # "{year}" is filled in
    orders: float  # extra share of present members who buy on the day (× their propensity)
    joins: float  # join multiplier on the day
    preheat_days: int
    temp_group: str  # name of the temporary campaign group when the window allows one


SHOPPING_DAYS = (
    ShoppingDay(11, 11, "double11_{year}", 0.09, 2.6, 11, BRAND + "·双11福利预热群"),
    ShoppingDay(6, 18, "618_{year}", 0.05, 1.8, 10, BRAND + "·618福利预热群"),
    ShoppingDay(12, 12, "double12_{year}", 0.03, 1.4, 5, BRAND + "·双12福利群"),
    ShoppingDay(3, 8, "womens_day_{year}", 0.02, 1.3, 4, BRAND + "·女神节福利群"),
    ShoppingDay(5, 20, "520_{year}", 0.015, 1.2, 3, BRAND + "·520福利群"),
)
