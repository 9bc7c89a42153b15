//! The tables the catalog is generated from. Prices are GST-inclusive
//! cents; `true` in a staple's last field means GST-free (basic food under
//! the GST Act: fresh produce, meat, bread, milk, tea; not snacks,
//! confectionery, soft drinks, pastries, ice cream or prepared meals).

use super::Department;

/// A staple: `(SKU code, name, cents, GST-free)`, in every seed's catalog at
/// this price.
pub type Staple = (&'static str, &'static str, i64, bool);

/// Items the scripted scenario and the browser tests count on, in every
/// seed's catalog at these prices (and stocked deep).
pub const SHELF: [(Department, Staple); 9] = [
    (
        Department::Fresh,
        ("FRESH-BANANAS", "Bananas, 1 kg", 420, true),
    ),
    (
        Department::Bakery,
        ("BAKERY-SOURDOUGH", "Sourdough loaf, 750 g", 650, true),
    ),
    (
        Department::Wine,
        (
            "WINE-SHIRAZ-BAROSSA",
            "Barossa Valley Shiraz, 750 mL",
            2499,
            false,
        ),
    ),
    (
        Department::Wine,
        (
            "WINE-SAUVBLANC-MARLBOROUGH",
            "Marlborough Sauvignon Blanc, 750 mL",
            1800,
            false,
        ),
    ),
    (
        Department::Beer,
        (
            "BEER-PALE-ALE",
            "Harbour Brewing Pale Ale, 375 mL can",
            450,
            false,
        ),
    ),
    (
        Department::Snacks,
        (
            "SNACK-CHIPS-SEASALT",
            "Sea salt potato chips, 175 g",
            450,
            false,
        ),
    ),
    (
        Department::Meals,
        (
            "MEAL-CHEESE-PLATTER",
            "Cheese platter for two (counter)",
            2500,
            false,
        ),
    ),
    (
        Department::Meals,
        ("MEAL-LAKSA", "Chicken laksa (counter)", 1650, false),
    ),
    (
        Department::Drinks,
        ("DRINK-SPRING-WATER", "Still spring water, 1.5 L", 250, true),
    ),
];

pub const FRESH: [Staple; 30] = [
    ("FRESH-APPLES", "Pink Lady apples, 1 kg", 690, true),
    ("FRESH-AVOCADO", "Hass avocado, each", 250, true),
    ("FRESH-TOMATOES", "Truss tomatoes, 500 g", 450, true),
    ("FRESH-CARROTS", "Carrots, 1 kg", 290, true),
    ("FRESH-BROCCOLI", "Broccoli, each", 320, true),
    ("FRESH-SPINACH", "Baby spinach, 120 g", 350, true),
    ("FRESH-POTATOES", "Washed potatoes, 2 kg", 550, true),
    ("FRESH-ONIONS", "Brown onions, 1 kg", 300, true),
    ("FRESH-LEMON", "Lemon, each", 99, true),
    ("FRESH-STRAWBERRIES", "Strawberries, 250 g", 400, true),
    ("FRESH-BLUEBERRIES", "Blueberries, 125 g", 500, true),
    ("FRESH-MANGO", "Kensington Pride mango, each", 350, true),
    ("FRESH-MUSHROOMS", "Cup mushrooms, 200 g", 420, true),
    ("FRESH-ZUCCHINI", "Zucchini, 500 g", 380, true),
    ("FRESH-CAPSICUM", "Red capsicum, each", 220, true),
    ("FRESH-CUCUMBER", "Lebanese cucumber, each", 120, true),
    ("FRESH-GARLIC", "Garlic, 100 g", 250, true),
    ("FRESH-GINGER", "Ginger, 100 g", 280, true),
    ("FRESH-SWEET-POTATO", "Sweet potato, 1 kg", 450, true),
    ("FRESH-KALE", "Tuscan kale, bunch", 400, true),
    ("FRESH-CORN", "Sweet corn, each", 150, true),
    ("FRESH-PEARS", "Packham pears, 1 kg", 590, true),
    ("FRESH-ORANGES", "Navel oranges, 1 kg", 490, true),
    (
        "FRESH-CHICKEN-BREAST",
        "Chicken breast fillets, 500 g",
        850,
        true,
    ),
    ("FRESH-BEEF-MINCE", "Beef mince, 500 g", 750, true),
    ("FRESH-LAMB-CUTLETS", "Lamb cutlets, 400 g", 1600, true),
    ("FRESH-SALMON", "Atlantic salmon fillets, 250 g", 1100, true),
    (
        "FRESH-SAUSAGES",
        "Pork and fennel sausages, 500 g",
        700,
        true,
    ),
    ("FRESH-PRAWNS", "Cooked tiger prawns, 500 g", 2000, true),
    ("FRESH-HERBS", "Mixed fresh herbs, bunch", 300, true),
];

pub const BAKERY: [Staple; 14] = [
    ("BAKERY-WHOLEMEAL", "Wholemeal loaf, 700 g", 550, true),
    ("BAKERY-MULTIGRAIN", "Multigrain loaf, 700 g", 590, true),
    ("BAKERY-RYE", "Dark rye loaf, 680 g", 650, true),
    ("BAKERY-BAGUETTE", "Baguette", 400, true),
    ("BAKERY-TURKISH", "Turkish bread", 450, true),
    ("BAKERY-ROLLS", "Crusty bread rolls, 6 pack", 480, true),
    ("BAKERY-PITA", "Pita pockets, 6 pack", 350, true),
    ("BAKERY-BAGELS", "Plain bagels, 4 pack", 500, true),
    ("BAKERY-CROISSANT", "Butter croissant", 350, false),
    ("BAKERY-BANANA-BREAD", "Banana bread, slice", 450, false),
    ("BAKERY-MUFFIN", "Blueberry muffin", 400, false),
    ("BAKERY-LAMINGTON", "Lamingtons, 4 pack", 600, false),
    ("BAKERY-SCROLL", "Cinnamon scroll", 420, false),
    ("BAKERY-MEAT-PIE", "Beef pie (warmer)", 650, false),
];

pub const DAIRY: [Staple; 18] = [
    ("DAIRY-MILK-2L", "Full cream milk, 2 L", 350, true),
    ("DAIRY-MILK-LIGHT", "Light milk, 2 L", 350, true),
    ("DAIRY-OAT-MILK", "Oat milk, 1 L", 400, true),
    ("DAIRY-BUTTER", "Salted butter, 250 g", 550, true),
    ("DAIRY-CHEDDAR", "Vintage cheddar, 250 g", 750, true),
    ("DAIRY-BRIE", "Double brie, 200 g", 800, true),
    ("DAIRY-FETA", "Danish feta, 200 g", 650, true),
    ("DAIRY-PARMESAN", "Parmesan, 150 g", 850, true),
    ("DAIRY-YOGHURT", "Greek yoghurt, 1 kg", 700, true),
    ("DAIRY-CREAM", "Thickened cream, 300 mL", 350, true),
    ("DAIRY-EGGS-12", "Free range eggs, 12 pack", 680, true),
    ("DAIRY-EGGS-6", "Free range eggs, 6 pack", 400, true),
    ("DAIRY-HALOUMI", "Haloumi, 180 g", 700, true),
    ("DAIRY-RICOTTA", "Fresh ricotta, 375 g", 550, true),
    ("DAIRY-ICE-CREAM", "Vanilla ice cream, 1 L", 800, false),
    ("DAIRY-GELATO", "Pistachio gelato, 500 mL", 1000, false),
    ("DAIRY-CUSTARD", "Vanilla custard, 1 L", 450, true),
    ("DAIRY-SOUR-CREAM", "Sour cream, 300 mL", 350, true),
];

pub const PANTRY: [Staple; 30] = [
    ("PANTRY-RICE-JASMINE", "Jasmine rice, 2 kg", 700, true),
    ("PANTRY-RICE-BASMATI", "Basmati rice, 1 kg", 500, true),
    ("PANTRY-SPAGHETTI", "Spaghetti, 500 g", 250, true),
    ("PANTRY-PENNE", "Penne, 500 g", 250, true),
    ("PANTRY-FLOUR", "Plain flour, 1 kg", 200, true),
    ("PANTRY-SUGAR", "Raw sugar, 1 kg", 250, true),
    (
        "PANTRY-OLIVE-OIL",
        "Extra virgin olive oil, 1 L",
        1400,
        true,
    ),
    ("PANTRY-CANOLA-OIL", "Canola oil, 750 mL", 500, true),
    (
        "PANTRY-TOMATOES-TIN",
        "Diced tomatoes, 400 g tin",
        150,
        true,
    ),
    ("PANTRY-CHICKPEAS", "Chickpeas, 400 g tin", 160, true),
    ("PANTRY-LENTILS", "Red lentils, 500 g", 350, true),
    ("PANTRY-OATS", "Rolled oats, 750 g", 400, true),
    ("PANTRY-HONEY", "Leatherwood honey, 500 g", 1100, true),
    (
        "PANTRY-PEANUT-BUTTER",
        "Crunchy peanut butter, 375 g",
        500,
        true,
    ),
    ("PANTRY-VEGEMITE", "Vegemite, 380 g", 800, true),
    ("PANTRY-TEA", "English breakfast tea, 100 bags", 600, true),
    (
        "PANTRY-COFFEE-BEANS",
        "Espresso coffee beans, 1 kg",
        3200,
        true,
    ),
    ("PANTRY-COFFEE-PODS", "Coffee pods, 20 pack", 900, true),
    ("PANTRY-TUNA", "Tuna in olive oil, 185 g", 400, true),
    ("PANTRY-STOCK", "Chicken stock, 1 L", 350, true),
    ("PANTRY-SOY", "Soy sauce, 500 mL", 450, false),
    ("PANTRY-FISH-SAUCE", "Fish sauce, 300 mL", 400, false),
    ("PANTRY-PASSATA", "Tomato passata, 700 g", 350, true),
    ("PANTRY-COCONUT-MILK", "Coconut milk, 400 mL", 250, true),
    ("PANTRY-MUESLI", "Toasted muesli, 750 g", 650, false),
    ("PANTRY-JAM", "Strawberry jam, 500 g", 500, true),
    ("PANTRY-SALT", "Sea salt flakes, 250 g", 600, true),
    ("PANTRY-PEPPER", "Black peppercorns, 100 g", 550, true),
    ("PANTRY-CURRY-PASTE", "Red curry paste, 200 g", 450, false),
    (
        "PANTRY-MAYONNAISE",
        "Whole egg mayonnaise, 440 g",
        550,
        false,
    ),
];

pub const DRINKS: [Staple; 16] = [
    (
        "DRINK-SPARKLING-WATER",
        "Sparkling mineral water, 1 L",
        250,
        false,
    ),
    ("DRINK-COLA", "Cola, 1.25 L", 350, false),
    ("DRINK-LEMONADE", "Lemonade, 1.25 L", 320, false),
    ("DRINK-GINGER-BEER", "Ginger beer, 4 x 330 mL", 700, false),
    ("DRINK-KOMBUCHA", "Kombucha, 330 mL", 450, false),
    ("DRINK-ICED-TEA", "Peach iced tea, 500 mL", 380, false),
    ("DRINK-ENERGY", "Energy drink, 250 mL can", 350, false),
    (
        "DRINK-ORANGE-JUICE",
        "Orange juice, no added sugar, 2 L",
        650,
        true,
    ),
    ("DRINK-APPLE-JUICE", "Cloudy apple juice, 1 L", 450, true),
    ("DRINK-COCONUT-WATER", "Coconut water, 1 L", 550, true),
    ("DRINK-TONIC", "Indian tonic water, 4 x 200 mL", 600, false),
    ("DRINK-SODA-WATER", "Soda water, 1.25 L", 200, false),
    ("DRINK-COLD-BREW", "Cold brew coffee, 250 mL", 500, false),
    ("DRINK-CHOC-MILK", "Chocolate milk, 600 mL", 400, true),
    ("DRINK-LIME-CORDIAL", "Lime cordial, 1 L", 450, false),
    ("DRINK-SPORTS", "Sports drink, 600 mL", 380, false),
];

pub const HOUSEHOLD: [Staple; 14] = [
    (
        "HOUSE-DISH-LIQUID",
        "Dishwashing liquid, 500 mL",
        400,
        false,
    ),
    ("HOUSE-PAPER-TOWEL", "Paper towel, 2 rolls", 450, false),
    ("HOUSE-TOILET-PAPER", "Toilet paper, 12 rolls", 900, false),
    ("HOUSE-LAUNDRY", "Laundry liquid, 2 L", 1500, false),
    ("HOUSE-BIN-BAGS", "Kitchen bin bags, 50 pack", 600, false),
    ("HOUSE-FOIL", "Aluminium foil, 30 m", 500, false),
    ("HOUSE-CLING-WRAP", "Cling wrap, 60 m", 400, false),
    ("HOUSE-SPONGES", "Scrub sponges, 5 pack", 350, false),
    ("HOUSE-HAND-SOAP", "Hand wash, 250 mL", 450, false),
    (
        "HOUSE-DISH-TABLETS",
        "Dishwasher tablets, 30 pack",
        1200,
        false,
    ),
    ("HOUSE-BATTERIES", "AA batteries, 8 pack", 1100, false),
    ("HOUSE-CANDLES", "Tea light candles, 24 pack", 500, false),
    ("HOUSE-COOLER-BAG", "Insulated cooler bag", 2000, false),
    ("HOUSE-MATCHES", "Safety matches, 10 boxes", 300, false),
];

/// Restaurant counter dishes: `(code, dish, regular cents)`; a large
/// serve costs 40% more.
pub const DISHES: [(&str, &str, i64); 14] = [
    ("PHO", "Beef pho", 1600),
    ("BUTTER-CHICKEN", "Butter chicken with rice", 1750),
    ("PAD-THAI", "Chicken pad thai", 1650),
    ("FISH-CHIPS", "Fish and chips", 1800),
    ("MARGHERITA", "Margherita pizza", 1900),
    ("LASAGNE", "Beef lasagne", 1700),
    ("VEG-CURRY", "Vegetable and lentil curry", 1500),
    ("SUSHI-BOX", "Salmon sushi box", 1600),
    ("CAESAR", "Chicken caesar salad", 1450),
    ("POKE", "Tuna poke bowl", 1800),
    ("RISOTTO", "Mushroom risotto", 1700),
    ("SCHNITZEL", "Chicken schnitzel with slaw", 1850),
    ("DUMPLINGS", "Pork and chive dumplings, 12", 1400),
    ("BIBIMBAP", "Beef bibimbap", 1750),
];

/// Wine varietals: `(code, name, base cents)`.
pub const VARIETALS: [(&str, &str, i64); 10] = [
    ("SHIRAZ", "Shiraz", 2400),
    ("CABSAV", "Cabernet Sauvignon", 2600),
    ("MERLOT", "Merlot", 2000),
    ("PINOTNOIR", "Pinot Noir", 3000),
    ("GRENACHE", "Grenache", 2400),
    ("CHARDONNAY", "Chardonnay", 2400),
    ("SAUVBLANC", "Sauvignon Blanc", 1800),
    ("RIESLING", "Riesling", 2200),
    ("PINOTGRIS", "Pinot Gris", 2100),
    ("ROSE", "Rose", 1900),
];

/// Wine regions: `(code, name, premium in percent)`.
pub const REGIONS: [(&str, &str, i64); 8] = [
    ("BAROSSA", "Barossa Valley", 10),
    ("MCLAREN", "McLaren Vale", 5),
    ("MARGARET", "Margaret River", 25),
    ("YARRA", "Yarra Valley", 20),
    ("HUNTER", "Hunter Valley", 0),
    ("COONAWARRA", "Coonawarra", 15),
    ("CLARE", "Clare Valley", 5),
    ("TAMAR", "Tamar Valley", 30),
];

pub const WINERIES: [&str; 8] = [
    "Two Hands Hill",
    "Ironbark Ridge",
    "Saltbush Estate",
    "Old Quarry",
    "Red Gum Creek",
    "Cape Banksia",
    "Southern Cross Vineyards",
    "Wattle Bend",
];

/// Beer styles: `(code, name, base cents for a 375 mL can)`.
pub const STYLES: [(&str, &str, i64); 10] = [
    ("LAGER", "Lager", 400),
    ("PILSNER", "Pilsner", 450),
    ("IPA", "IPA", 550),
    ("HAZY", "Hazy IPA", 600),
    ("STOUT", "Stout", 550),
    ("PACIFIC", "Pacific Ale", 450),
    ("AMBER", "Amber Ale", 480),
    ("WHEAT", "Wheat Beer", 500),
    ("MID", "Mid-strength Lager", 380),
    ("SOUR", "Sour", 600),
];

pub const BREWERIES: [(&str, &str); 7] = [
    ("HARBOUR", "Harbour Brewing"),
    ("BLUEGUM", "Bluegum"),
    ("SANDSTONE", "Sandstone"),
    ("GOLDFIELDS", "Goldfields"),
    ("TIDEWATER", "Tidewater"),
    ("KOOKABURRA", "Laughing Bird"),
    ("RIVERBEND", "Riverbend"),
];

/// Spirits: `(code, name, base cents for 700 mL)`.
pub const SPIRITS: [(&str, &str, i64); 8] = [
    ("GIN", "Dry Gin", 7500),
    ("VODKA", "Vodka", 5500),
    ("WHISKY", "Single Malt Whisky", 11000),
    ("RUM", "Spiced Rum", 6000),
    ("TEQUILA", "Blanco Tequila", 7000),
    ("BRANDY", "Brandy", 5000),
    ("BOURBON", "Bourbon", 6500),
    ("AMARO", "Amaro", 5500),
];

pub const DISTILLERS: [(&str, &str); 5] = [
    ("HOBART", "Hobart Still"),
    ("OUTBACK", "Red Centre"),
    ("COASTAL", "Coastal Botanic"),
    ("HIGHLAND", "Snowy Highland"),
    ("ISLAND", "Kangaroo Island Spirits"),
];

/// Snack kinds: `(code, name, base cents)`, each made by several brands.
pub const SNACK_KINDS: [(&str, &str, i64); 12] = [
    ("CHIPS-CHICKEN", "Chicken potato chips, 175 g", 450),
    ("CHIPS-VINEGAR", "Salt and vinegar chips, 175 g", 450),
    ("CORN-CHIPS", "Corn chips, 200 g", 400),
    ("PRETZELS", "Pretzels, 250 g", 380),
    ("POPCORN", "Sea salt popcorn, 100 g", 350),
    ("CHOC-MILK", "Milk chocolate block, 180 g", 550),
    ("CHOC-DARK", "Dark chocolate 70%, 100 g", 500),
    ("COOKIES", "Choc chip cookies, 200 g", 420),
    ("CRACKERS", "Cheese crackers, 160 g", 380),
    ("NUTS", "Roasted salted cashews, 150 g", 650),
    ("LOLLIES", "Jelly snakes, 250 g", 400),
    ("MUESLI-BARS", "Muesli bars, 6 pack", 450),
];

pub const SNACK_BRANDS: [(&str, &str); 4] = [
    ("BONDI", "Bondi"),
    ("OUTBACK", "Outback"),
    ("GOLDCOAST", "Gold Coast"),
    ("SOUTHERN", "Southern Crunch"),
];
