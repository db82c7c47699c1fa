package synth

// Built-in lists for invented people. Common characters only; any
// combination is a made-up name.

var surnames = []string{
	"陳", "林", "王", "曹", "劉", "李", "張", "黃", "吳", "楊",
	"鄭", "謝", "邱", "游", "何", "潘", "蔡", "周", "許", "葉",
	"蘇", "莊", "呂", "江", "洪", "郭", "賴", "徐", "高", "羅",
}

var maleGiven = []string{
	"志", "明", "家", "豪", "俊", "傑", "建", "宏", "冠", "宇",
	"承", "翰", "柏", "諺", "信", "德", "國", "榮", "文", "彬",
	"偉", "哲", "銘", "峰",
}

var femaleGiven = []string{
	"淑", "芬", "美", "玲", "雅", "婷", "怡", "君", "佳", "慧",
	"靜", "宜", "欣", "萱", "秀", "珠", "麗", "華", "詩", "涵",
	"筱", "雯", "心", "瑜",
}

type township struct {
	code     string // 8-digit town code (see the package documentation)
	name     string
	villages []string
	percent  int // share of people
}

var townships = [...]township{
	{"09007010", "南竿鄉", []string{"介壽村", "復興村", "福沃村", "清水村", "珠螺村", "馬祖村", "津沙村", "仁愛村", "梅石村", "四維村"}, 50},
	{"09007020", "北竿鄉", []string{"塘岐村", "后澳村", "橋仔村", "芹壁村", "坂里村", "白沙村"}, 25},
	{"09007030", "莒光鄉", []string{"青帆村", "田沃村", "西坵村", "福正村", "大坪村"}, 12},
	{"09007040", "東引鄉", []string{"中柳村", "樂華村"}, 13},
}

// pickTownship maps a percentile in [0, 100) to a township index by share.
func pickTownship(p int) int {
	for i := range townships {
		if p < townships[i].percent {
			return i
		}
		p -= townships[i].percent
	}
	return len(townships) - 1
}
