"""A deterministic generator of a believable demo online store.

`make demo` runs on a store this module invents, since real shop data may not be
redistributed. The store has a three-level category tree with hand-written vocabularies
(product nouns, adjectives, materials or colours, sizes with units, invented brands),
log-normal prices around a realistic median per category, and shoppers with latent tastes:
a preference over categories concentrated on a few, favourite brands, a preferred price
band, a heavy-tailed activity level and a preferred hour of the day.

Behaviour is simulated session by session, vectorised with numpy:

* sessions follow a daily rhythm (evenings busy, nights quiet, each shopper's own hour)
  and a weekly one (weekends busier);
* a session may open with a `search` whose query is made from the words of the item the
  shopper then clicks (noun, brand + noun, adjective + noun, ..., sometimes lower-case,
  sometimes with a typo), followed by `click`s and `view`s;
* items are chosen by a choice model: the shopper's category tastes, brand affinity and
  price band, times a power-law popularity within each category;
* the funnel view -> add_to_cart -> purchase converts at realistic rates, and some
  purchases are rated later (1-5, higher for items matching the shopper's taste);
* consumables (skin care, coffee, dog food, ...) are bought again after a replenishment
  cycle.

The same `DemoConfig` (seed included) always gives identical frames and byte-identical
files; `DemoStore.latent` exposes the hidden tastes so tests can check the behaviour.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from tqdm import tqdm

from shelfwise.data.frames import EVENT_COLUMNS, conform
from shelfwise.data.io import write_jsonl
from shelfwise.errors import ConfigError

__all__ = [
    "BRANDS",
    "LEAVES",
    "TOP_CATEGORIES",
    "DemoConfig",
    "DemoStore",
    "Leaf",
    "generate",
    "write_demo",
]

DAY = 86_400
"""Seconds in a day."""

# Event type codes used internally; the frames carry the names.
_SEARCH, _CLICK, _VIEW, _CART, _PURCHASE, _RATING = range(6)
_TYPE_NAMES = np.array(["search", "click", "view", "add_to_cart", "purchase", "rating"], object)


# --------------------------------------------------------------------------------------
# Vocabulary
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Leaf:
    """A leaf category with the vocabulary its products are made of.

    A title is `"Brand Adjective Variant Noun, Size"`; the variant is a material, colour,
    scent, flavour, ... as `variant_key` says, and becomes an attribute of that name.
    """

    path: str
    median_price: float
    price_sigma: float
    nouns: tuple[str, ...]
    adjectives: tuple[str, ...]
    variants: tuple[str, ...]
    sizes: tuple[str, ...]
    uses: tuple[str, ...]
    features: tuple[str, ...]
    variant_key: str = "material"
    size_key: str = "size"
    consumable: bool = False
    cycle_days: float = 30.0
    size_step: float = 0.12

    @property
    def top(self) -> str:
        """The top-level category."""
        return self.path.split(" > ")[0]

    @property
    def name(self) -> str:
        """The leaf's own name (the last level)."""
        return self.path.split(" > ")[-1]


def _leaf(
    path: str,
    median_price: float,
    price_sigma: float,
    nouns: str,
    adjectives: str,
    variants: str,
    sizes: str,
    uses: str,
    features: str,
    **options: Any,
) -> Leaf:
    """A `Leaf` from `|`-separated word lists (keeps the tables below readable)."""

    def split(text: str) -> tuple[str, ...]:
        return tuple(w.strip() for w in text.split("|") if w.strip())

    return Leaf(
        path,
        median_price,
        price_sigma,
        split(nouns),
        split(adjectives),
        split(variants),
        split(sizes),
        split(uses),
        split(features),
        **options,
    )


LEAVES: tuple[Leaf, ...] = (
    # ---- Home ------------------------------------------------------------------------
    _leaf(
        "Home > Kitchen > Knives", 40, 0.45,
        "Chef's Knife|Santoku Knife|Paring Knife|Bread Knife|Utility Knife|Nakiri Knife|"
        "Boning Knife",
        "Professional|Forged|Ultra-Sharp|Classic|Precision|Japanese-Style|Ergonomic|Heritage",
        "Damascus Steel|High-Carbon Steel|Stainless Steel|Ceramic|VG-10 Steel|German Steel",
        "3.5 inch|5 inch|6 inch|7 inch|8 inch|10 inch",
        "everyday meal prep|slicing vegetables and herbs|carving roasts|home cooks and chefs",
        "Full-tang blade with a riveted pakkawood handle for balance and control|"
        "Hand-sharpened to a 15-degree edge that stays keen through daily use|"
        "Rust-resistant and easy to hone at home|Comes with a protective blade guard",
        size_key="blade_length",
    ),
    _leaf(
        "Home > Kitchen > Cookware", 70, 0.5,
        "Frying Pan|Skillet|Saucepan|Dutch Oven|Stock Pot|Saute Pan|Wok|Grill Pan",
        "Nonstick|Tri-Ply|Induction-Ready|Heavy-Duty|Oven-Safe|Classic|Pre-Seasoned",
        "Cast Iron|Stainless Steel|Hard-Anodized Aluminum|Carbon Steel|Enameled Cast Iron|"
        "Copper",
        "8 inch|10 inch|12 inch|2 qt|3.5 qt|5.5 qt",
        "searing, sauteing and simmering|weeknight dinners|slow braises and stews|"
        "high-heat stir-fries",
        "Even heat distribution with no hot spots|"
        "Oven-safe to 500°F and compatible with all stovetops|"
        "Stay-cool handle and a tight-fitting lid|Dishwasher-safe for easy cleanup",
    ),
    _leaf(
        "Home > Kitchen > Coffee Makers", 90, 0.6,
        "Drip Coffee Maker|Espresso Machine|French Press|Pour-Over Set|Cold Brew Maker|"
        "Burr Grinder|Moka Pot",
        "Programmable|Compact|Barista-Grade|Thermal|Single-Serve|Smart|Classic",
        "Stainless Steel|Matte Black|Brushed Copper|Glass|White|Gunmetal",
        "4 cup|8 cup|12 cup|34 oz|1.5 L",
        "a fresh cup every morning|cafe-style espresso at home|brewing for the whole household|"
        "slow weekend mornings",
        "Brews a full pot in under 6 minutes|"
        "Built-in timer lets you wake up to fresh coffee|"
        "Precise temperature control brings out the full flavor of the beans|"
        "Reusable filter means no more paper filters",
        variant_key="finish",
        size_key="capacity",
    ),
    _leaf(
        "Home > Bedding > Sheet Sets", 60, 0.45,
        "Sheet Set|Fitted Sheet|Duvet Cover Set|Flat Sheet|Pillowcase Set",
        "Breathable|Cooling|Luxury|Wrinkle-Resistant|Hotel-Quality|Soft-Washed|Organic",
        "Egyptian Cotton|Bamboo Lyocell|Linen|Percale Cotton|Sateen Cotton|Microfiber|Flannel",
        "Twin|Full|Queen|King|California King",
        "cool, restful sleep|guest rooms|year-round comfort|hot sleepers",
        "Deep pockets fit mattresses up to 16 inches|Gets softer with every wash|"
        "OEKO-TEX certified fabric free of harmful substances|"
        "Breathable weave keeps you cool through the night",
        size_key="bed_size",
        size_step=0.1,
    ),
    _leaf(
        "Home > Bedding > Pillows", 35, 0.45,
        "Bed Pillow|Memory Foam Pillow|Body Pillow|Side Sleeper Pillow|Wedge Pillow",
        "Adjustable|Cooling|Hypoallergenic|Plush|Firm|Contour|Ergonomic",
        "Down Alternative|Shredded Memory Foam|Goose Down|Latex|Buckwheat|Gel-Infused Foam",
        "Standard|Queen|King|20 x 54 inch",
        "side and back sleepers|neck and shoulder support|allergy sufferers|reading in bed",
        "Removable, machine-washable cover|Adjustable fill lets you customise the loft|"
        "Holds its shape night after night|Ships vacuum-packed and fluffs up in a few hours",
        variant_key="fill",
    ),
    _leaf(
        "Home > Decor > Candles", 22, 0.5,
        "Scented Candle|Jar Candle|Pillar Candle|Tealight Set|Three-Wick Candle|"
        "Travel Tin Candle",
        "Hand-Poured|Clean-Burning|Cozy|Seasonal|Relaxing|Artisan",
        "Lavender|Vanilla Bean|Sea Salt|Sandalwood|Fresh Linen|Cinnamon Spice|Eucalyptus Mint|"
        "Fig|Pumpkin Spice",
        "3 oz|8 oz|14.5 oz|22 oz",
        "a calm evening at home|gifting|setting the mood for dinner|a fresh-smelling living room",
        "Made with natural soy wax and a cotton wick|Up to 60 hours of even burn time|"
        "Phthalate-free fragrance oils fill the room|Comes in a reusable glass vessel",
        variant_key="scent",
        consumable=True,
        cycle_days=40,
        size_step=0.25,
    ),
    _leaf(
        "Home > Bath > Towels", 30, 0.45,
        "Bath Towel Set|Hand Towels|Bath Sheet|Washcloth Set|Beach Towel|Bath Mat",
        "Quick-Dry|Plush|Absorbent|Spa|Lightweight|Oversized",
        "Turkish Cotton|Organic Cotton|Waffle Weave Cotton|Bamboo|Egyptian Cotton|Microfiber",
        "2-Piece|4-Piece|6-Piece|30 x 56 inch|35 x 70 inch",
        "everyday use|the guest bathroom|the beach and pool|a spa-like bathroom",
        "600 GSM for hotel-level softness|Absorbs water fast and dries quickly|"
        "Double-stitched hems resist fraying|Colourfast through hundreds of washes",
    ),
    _leaf(
        "Home > Cleaning > Laundry Detergent", 14, 0.35,
        "Laundry Detergent|Detergent Pods|Laundry Sheets|Stain Remover|Fabric Softener",
        "Concentrated|Eco-Friendly|Fragrance-Free|Ultra|Gentle|Plant-Based",
        "Fresh Linen|Unscented|Lavender|Citrus|Ocean Breeze|Eucalyptus",
        "32 oz|64 oz|100 oz|42 count|81 count",
        "sensitive skin|everyday loads|tough stains|cold-water washing",
        "Cleans in cold water to save energy|Free of dyes and harsh chemicals|"
        "Lifts grass, wine and grease stains|Biodegradable, plant-based formula",
        variant_key="scent",
        consumable=True,
        cycle_days=35,
        size_step=0.3,
    ),
    # ---- Electronics -----------------------------------------------------------------
    _leaf(
        "Electronics > Audio > Headphones", 120, 0.7,
        "Over-Ear Headphones|On-Ear Headphones|Earbuds|Studio Headphones|Sport Earbuds|"
        "Gaming Headset",
        "Wireless|Noise-Cancelling|Bluetooth|Hi-Res|Foldable|Lightweight",
        "Matte Black|Silver|Midnight Blue|White|Rose Gold|Graphite|Sage Green",
        "",
        "commuting and travel|long work-from-home calls|the gym|critical listening",
        "Active noise cancellation blocks out planes, trains and open offices|"
        "Up to 30 hours of battery life with fast charging|"
        "Memory-foam ear cushions for all-day comfort|"
        "Multipoint Bluetooth pairs with two devices at once",
        variant_key="colour",
    ),
    _leaf(
        "Electronics > Audio > Bluetooth Speakers", 80, 0.6,
        "Bluetooth Speaker|Portable Speaker|Smart Speaker|Soundbar|Party Speaker",
        "Waterproof|Rugged|Compact|360-Degree|Wireless|Bass-Boosted",
        "Black|Slate Grey|Ocean Blue|Red|Sand|Forest Green",
        "10W|20W|40W|100W",
        "the beach and pool|backyard parties|the home office|camping trips",
        "IP67 waterproof and dustproof|Up to 24 hours of playtime|"
        "Pair two speakers for stereo sound|Deep bass from a passive radiator",
        variant_key="colour",
        size_key="output",
        size_step=0.3,
    ),
    _leaf(
        "Electronics > TV & Video > Televisions", 600, 0.45,
        "Smart TV|LED TV|OLED TV|QLED TV|Google TV|Roku TV",
        "Ultra HD|Slim|Frameless|Smart|Gaming|Cinema",
        "4K HDR|8K|Full HD|Mini-LED|120Hz",
        "32 inch|43 inch|50 inch|55 inch|65 inch|75 inch|85 inch",
        "movie nights|console gaming|sports fans|the living room",
        "Dolby Vision and HDR10+ for vivid contrast|"
        "Built-in streaming apps and a voice assistant|"
        "120Hz refresh rate for smooth motion|Three HDMI 2.1 ports with eARC",
        variant_key="display",
        size_key="screen_size",
        size_step=0.35,
    ),
    _leaf(
        "Electronics > Computers > Laptops", 900, 0.45,
        "Laptop|Ultrabook|Gaming Laptop|2-in-1 Laptop|Chromebook",
        "Thin and Light|Ultra-Slim|Performance|Business|Creator|Everyday",
        "Aluminum|Space Grey|Silver|Carbon Black|Lunar White",
        "13.3 inch|14 inch|15.6 inch|16 inch|17.3 inch",
        "students|working on the go|gaming and streaming|photo and video editing",
        "All-day battery life of up to 14 hours|16GB RAM and a fast 512GB SSD|"
        "Backlit keyboard and a 1080p webcam|Weighs just over 3 pounds",
        variant_key="colour",
        size_key="screen_size",
        size_step=0.15,
    ),
    _leaf(
        "Electronics > Computers > Keyboards", 60, 0.55,
        "Mechanical Keyboard|Gaming Keyboard|Keyboard|Keyboard and Mouse Combo|Split Keyboard",
        "RGB Backlit|Hot-Swappable|Compact|Quiet|Wireless|Ergonomic",
        "Tactile|Linear|Clicky|Silent|Low-Profile",
        "60%|65%|75%|TKL|Full-Size",
        "typing all day|competitive gaming|the home office|programmers",
        "Per-key RGB lighting with onboard profiles|"
        "Connects over Bluetooth, 2.4 GHz or USB-C|PBT keycaps resist shine|"
        "Up to 200 hours of battery life",
        variant_key="switch",
        size_key="layout",
    ),
    _leaf(
        "Electronics > Accessories > Phone Cases", 20, 0.45,
        "Phone Case|Wallet Case|Rugged Case|Clear Case|MagSafe Case",
        "Slim|Shockproof|Military-Grade|Minimalist|Protective|Eco",
        "Black|Navy|Sage|Lavender|Leather Brown|Frosted|Crystal",
        "6.1 inch|6.3 inch|6.7 inch|6.9 inch",
        "everyday protection|drop-prone hands|travelling light|showing off your phone",
        "Raised edges protect the screen and camera|Drop-tested from 10 feet|"
        "Compatible with wireless charging|Grippy sides that won't slip out of your pocket",
        variant_key="colour",
        size_key="fits_screen",
        size_step=0.02,
    ),
    _leaf(
        "Electronics > Accessories > Chargers & Cables", 18, 0.5,
        "USB-C Charger|Charging Cable|Wireless Charger|Power Bank|Car Charger|Charging Stand",
        "Fast-Charging|Braided|Compact|GaN|Magnetic|Travel",
        "Black|White|Grey|Blue",
        "20W|30W|65W|10000mAh|20000mAh",
        "charging on the go|the nightstand|travel|the car",
        "Charges a phone to 50% in 30 minutes|Nylon-braided cable tested for 20,000 bends|"
        "Safe charging with over-heat protection|Charges two devices at once",
        variant_key="colour",
        size_step=0.2,
    ),
    _leaf(
        "Electronics > Wearables > Smartwatches", 220, 0.55,
        "Smartwatch|Fitness Tracker|GPS Watch|Sport Watch|Hybrid Watch",
        "Waterproof|Lightweight|Rugged|Slim|Solar|Classic",
        "Black|Silver|Rose Gold|Titanium|Olive|Midnight",
        "38mm|41mm|42mm|45mm|47mm",
        "tracking workouts|sleep and health tracking|trail runners|everyday wear",
        "Heart rate, SpO2 and sleep tracking|Up to 10 days of battery life|"
        "Built-in GPS for phone-free runs|Water-resistant to 50 metres",
        variant_key="colour",
        size_key="case_size",
        size_step=0.06,
    ),
    # ---- Beauty ----------------------------------------------------------------------
    _leaf(
        "Beauty > Skin Care > Moisturizers", 28, 0.55,
        "Face Moisturizer|Night Cream|Gel Cream|Day Cream|Eye Cream|Face Lotion",
        "Hydrating|Lightweight|Fragrance-Free|Oil-Free|Rich|Barrier-Repair|Firming",
        "Hyaluronic Acid|Ceramide|Niacinamide|Squalane|Retinol|Vitamin C|Shea Butter|Peptide",
        "1 oz|1.7 oz|50ml|2.5 oz|100ml",
        "dry and sensitive skin|oily, acne-prone skin|daily hydration|overnight repair",
        "Absorbs quickly without a greasy finish|"
        "Dermatologist-tested and non-comedogenic|Locks in moisture for up to 72 hours|"
        "Free of parabens, sulfates and synthetic fragrance",
        variant_key="key_ingredient",
        consumable=True,
        cycle_days=40,
        size_step=0.2,
    ),
    _leaf(
        "Beauty > Skin Care > Cleansers", 18, 0.45,
        "Face Wash|Foaming Cleanser|Cleansing Balm|Micellar Water|Gel Cleanser|"
        "Exfoliating Cleanser",
        "Gentle|Purifying|Hydrating|Clarifying|pH-Balanced|Soothing",
        "Salicylic Acid|Green Tea|Charcoal|Ceramide|Oat|Glycolic Acid",
        "4 oz|5 oz|8 oz|150ml|400ml",
        "removing makeup|morning and night cleansing|congested pores|sensitive skin",
        "Removes makeup and sunscreen without stripping|"
        "Soap-free formula keeps the skin barrier intact|Leaves skin soft, never tight|"
        "Gentle enough for daily use",
        variant_key="key_ingredient",
        consumable=True,
        cycle_days=35,
        size_step=0.2,
    ),
    _leaf(
        "Beauty > Skin Care > Sunscreen", 20, 0.4,
        "Sunscreen|Face Sunscreen|Sunscreen Lotion|Sunscreen Stick|Tinted Sunscreen|"
        "Sunscreen Spray",
        "Mineral|Sheer|Water-Resistant|Reef-Safe|Lightweight|Matte",
        "SPF 15|SPF 30|SPF 50|SPF 50+",
        "1.7 oz|3 oz|5 oz|50ml|100ml",
        "daily wear under makeup|beach days|outdoor sports|kids and sensitive skin",
        "Broad-spectrum UVA and UVB protection|Water-resistant for 80 minutes|"
        "No white cast on any skin tone|Zinc oxide formula is gentle on sensitive skin",
        variant_key="spf",
        consumable=True,
        cycle_days=35,
        size_step=0.2,
    ),
    _leaf(
        "Beauty > Hair Care > Shampoo", 14, 0.45,
        "Shampoo|Conditioner|Shampoo and Conditioner Set|Dry Shampoo|Hair Mask|"
        "Leave-In Conditioner",
        "Volumizing|Sulfate-Free|Moisturizing|Clarifying|Color-Safe|Strengthening",
        "Argan Oil|Tea Tree|Coconut|Biotin|Keratin|Rosemary Mint|Aloe",
        "8 oz|12 oz|16 oz|250ml|500ml|1L",
        "fine, flat hair|curly and coily hair|colour-treated hair|an itchy, flaky scalp",
        "Sulfate- and paraben-free formula|Adds shine and tames frizz|"
        "Safe for colour-treated hair|Fresh scent that lasts all day",
        variant_key="key_ingredient",
        consumable=True,
        cycle_days=35,
        size_step=0.2,
    ),
    _leaf(
        "Beauty > Makeup > Lipstick", 18, 0.45,
        "Lipstick|Liquid Lipstick|Lip Gloss|Lip Stain|Lip Balm|Lip Liner",
        "Matte|Satin|Long-Wear|Hydrating|Velvet|Sheer",
        "Ruby Red|Nude Beige|Berry|Coral|Mauve|Rosewood|Cherry|Plum|Pink Blush",
        "0.12 oz|0.14 oz|3.5g|5ml",
        "everyday wear|a night out|long days that need no touch-ups|gifting",
        "Transfer-proof colour lasts up to 12 hours|Enriched with vitamin E and jojoba oil|"
        "Highly pigmented in a single swipe|Vegan and cruelty-free",
        variant_key="shade",
        consumable=True,
        cycle_days=55,
        size_step=0.05,
    ),
    _leaf(
        "Beauty > Fragrance > Perfume", 70, 0.5,
        "Eau de Parfum|Eau de Toilette|Perfume|Cologne|Body Mist|Fragrance Gift Set",
        "Floral|Woody|Fresh|Warm|Citrus|Aquatic",
        "Jasmine|Amber|Bergamot|Vanilla|Oud|Rose|Cedarwood|Neroli",
        "1 oz|1.7 oz|3.4 oz|30ml|50ml|100ml",
        "everyday wear|evenings out|gifting|warm summer days",
        "Top notes of bergamot and pink pepper over a warm amber base|"
        "A long-lasting scent that wears for up to 8 hours|"
        "Elegant, refillable glass bottle|A unisex scent that suits any season",
        variant_key="notes",
        size_step=0.25,
    ),
    _leaf(
        "Beauty > Tools > Hair Dryers", 60, 0.6,
        "Hair Dryer|Blow Dryer Brush|Flat Iron|Curling Wand|Straightening Brush|"
        "Diffuser Dryer",
        "Ionic|Professional|Lightweight|Travel|Salon-Grade|Fast-Drying",
        "Ceramic|Tourmaline|Titanium|Infrared",
        "1 inch|1.25 inch|1600W|1875W",
        "quick morning routines|thick or curly hair|travel|salon-style blowouts",
        "Negative ions cut frizz and drying time|"
        "Three heat and two speed settings with a cool-shot button|"
        "Lightweight design that's easy on the wrist|Auto shut-off for peace of mind",
        variant_key="technology",
        size_step=0.05,
    ),
    # ---- Sports ----------------------------------------------------------------------
    _leaf(
        "Sports > Fitness > Yoga Mats", 35, 0.45,
        "Yoga Mat|Exercise Mat|Travel Yoga Mat|Yoga Mat and Strap Set|Pilates Mat",
        "Non-Slip|Extra-Thick|Eco-Friendly|Cushioned|Lightweight|Reversible",
        "Natural Rubber|TPE|Cork|PVC|Jute",
        "1/16 inch|1/8 inch|1/4 inch|6mm|10mm",
        "hot yoga|home workouts|pilates and stretching|yoga on the go",
        "Grippy texture stays put even in sweaty sessions|"
        "Alignment lines help with posture|Free of latex and phthalates|"
        "Rolls up light with a carrying strap",
        size_key="thickness",
        size_step=0.1,
    ),
    _leaf(
        "Sports > Fitness > Dumbbells", 60, 0.55,
        "Dumbbell Set|Adjustable Dumbbells|Hex Dumbbells|Kettlebell|Dumbbell Pair",
        "Adjustable|Heavy-Duty|Compact|Space-Saving|Rubber-Coated|Contoured",
        "Cast Iron|Neoprene|Rubber|Chrome|Urethane",
        "5 lb|10 lb|15 lb|25 lb|52.5 lb|90 lb",
        "home gyms|strength training|full-body workouts|small apartments",
        "Switch weights in seconds with a dial|Knurled handle for a secure grip|"
        "Rubber coating protects floors|Replaces 15 sets of weights",
        size_key="weight",
        size_step=0.45,
    ),
    _leaf(
        "Sports > Running > Running Shoes", 110, 0.35,
        "Running Shoes|Trail Running Shoes|Racing Flats|Walking Shoes|Training Shoes",
        "Cushioned|Lightweight|Stability|Responsive|Waterproof|Carbon-Plated",
        "Black/White|Neon Yellow|Ocean Blue|Grey|Coral|Triple Black|Olive",
        "US 7|US 8|US 9|US 10|US 11|US 12",
        "daily training miles|race day|rocky trails|long walks",
        "Responsive foam midsole returns energy with every stride|"
        "Breathable engineered mesh upper|Grippy rubber outsole for wet and dry roads|"
        "An 8mm heel-to-toe drop",
        variant_key="colour",
        size_step=0.0,
    ),
    _leaf(
        "Sports > Cycling > Bike Helmets", 65, 0.45,
        "Bike Helmet|Road Helmet|Mountain Bike Helmet|Commuter Helmet|Kids Bike Helmet",
        "MIPS|Ventilated|Aero|Lightweight|Adjustable|Reflective",
        "Matte Black|Gloss White|Hi-Vis Yellow|Red|Navy|Titanium Grey",
        "Small|Medium|Large|54-58 cm|58-62 cm",
        "daily commuting|long road rides|mountain trails|kids learning to ride",
        "MIPS liner reduces rotational forces on impact|18 vents keep you cool on climbs|"
        "Dial fit system for a secure, comfortable fit|Integrated rear LED light",
        variant_key="colour",
        size_step=0.0,
    ),
    _leaf(
        "Sports > Camping > Tents", 180, 0.55,
        "Backpacking Tent|Dome Tent|Family Tent|Pop-Up Tent|Instant Cabin Tent",
        "Ultralight|Waterproof|Freestanding|4-Season|Easy-Setup|Weatherproof",
        "Ripstop Nylon|Polyester|Canvas|Silnylon",
        "1-Person|2-Person|4-Person|6-Person|8-Person",
        "backpacking trips|family camping|festivals|car camping",
        "Sets up in under 5 minutes with colour-coded poles|"
        "Full-coverage rainfly with taped seams|Two doors and two vestibules for gear|"
        "Packs down to the size of a water bottle",
        size_key="capacity",
        size_step=0.3,
    ),
    _leaf(
        "Sports > Camping > Sleeping Bags", 90, 0.5,
        "Sleeping Bag|Mummy Sleeping Bag|Rectangular Sleeping Bag|Camping Quilt|"
        "Double Sleeping Bag",
        "Lightweight|Compressible|3-Season|Cold-Weather|Packable|Water-Repellent",
        "Down|Synthetic|Duck Down|Flannel-Lined",
        "40°F|30°F|20°F|0°F",
        "backpacking|family camping|cold-weather trips|sleepovers",
        "Draft collar and hood trap warmth|Compresses into the included stuff sack|"
        "Two-way zipper for ventilation|Stays warm well below freezing",
        variant_key="fill",
        size_key="temperature_rating",
        size_step=0.2,
    ),
    _leaf(
        "Sports > Nutrition > Protein Powder", 40, 0.35,
        "Whey Protein|Plant Protein|Protein Powder|Casein Protein|Collagen Peptides|"
        "Pre-Workout",
        "Grass-Fed|Low-Sugar|Organic|Keto-Friendly|Clean|Ultra-Filtered",
        "Chocolate|Vanilla|Cookies and Cream|Strawberry|Peanut Butter|Salted Caramel|Mocha",
        "1 lb|2 lb|30 servings|5 lb",
        "post-workout recovery|morning smoothies|building lean muscle|a quick breakfast",
        "25g of protein per scoop|Mixes smoothly with no clumps|"
        "Third-party tested for purity|No artificial sweeteners",
        variant_key="flavour",
        consumable=True,
        cycle_days=30,
        size_step=0.4,
    ),
    _leaf(
        "Sports > Hydration > Water Bottles", 25, 0.4,
        "Water Bottle|Insulated Tumbler|Sports Bottle|Hydration Pack|Straw Bottle",
        "Insulated|Leak-Proof|BPA-Free|Collapsible|Wide-Mouth|Double-Wall",
        "Stainless Steel|Tritan|Glass|Silicone",
        "12 oz|18 oz|24 oz|32 oz|40 oz|1L",
        "the gym|hiking|the office|kids' lunchboxes",
        "Keeps drinks cold for 24 hours or hot for 12|Leak-proof lid with a carry loop|"
        "Dishwasher-safe|Fits most car cup holders",
        size_key="capacity",
        size_step=0.1,
    ),
    # ---- Fashion ---------------------------------------------------------------------
    _leaf(
        "Fashion > Men > T-Shirts", 22, 0.4,
        "Crew Neck T-Shirt|V-Neck T-Shirt|Pocket Tee|Graphic Tee|Henley|Long Sleeve Tee",
        "Classic|Slim-Fit|Relaxed|Heavyweight|Everyday|Garment-Dyed",
        "Organic Cotton|Pima Cotton|Cotton Blend|Linen|Merino Wool|Tri-Blend",
        "S|M|L|XL|XXL",
        "everyday wear|layering|weekends|warm summer days",
        "Pre-shrunk so it keeps its fit wash after wash|Soft, breathable fabric|"
        "Tagless neck label for comfort|Reinforced shoulder seams",
        size_step=0.0,
    ),
    _leaf(
        "Fashion > Men > Jeans", 60, 0.4,
        "Jeans|Slim Jeans|Straight-Leg Jeans|Chinos|Relaxed Jeans|Tapered Jeans",
        "Stretch|Classic|Vintage|Raw|Distressed|Comfort",
        "Dark Wash|Light Wash|Black|Indigo|Selvedge Denim|Stone Wash",
        "30W x 30L|32W x 32L|34W x 32L|36W x 34L",
        "everyday wear|the office|weekend adventures|casual Fridays",
        "2% stretch for all-day comfort|Five-pocket styling|Fades naturally with wear|"
        "Sits at the waist with a regular rise",
        variant_key="wash",
        size_step=0.0,
    ),
    _leaf(
        "Fashion > Women > Dresses", 65, 0.45,
        "Midi Dress|Maxi Dress|Wrap Dress|Shirt Dress|Slip Dress|Sundress",
        "Flowy|Fitted|Tiered|Elegant|Casual|Smocked",
        "Linen|Silk|Satin|Cotton Poplin|Floral Chiffon|Jersey",
        "XS|S|M|L|XL",
        "weddings and parties|the office|summer weekends|date nights",
        "Adjustable straps and a smocked back|Fully lined, so it's never see-through|"
        "Has pockets|Falls just below the knee",
        size_step=0.0,
    ),
    _leaf(
        "Fashion > Women > Sweaters", 55, 0.45,
        "Cardigan|Pullover Sweater|Turtleneck|Crewneck Sweater|Knit Vest",
        "Chunky|Cropped|Oversized|Cable-Knit|Lightweight|Ribbed",
        "Merino Wool|Cashmere|Cotton|Alpaca Blend|Mohair Blend",
        "XS|S|M|L|XL",
        "chilly evenings|layering at the office|cozy weekends|travel",
        "Soft, non-itchy knit|Dropped shoulders for a relaxed fit|Ribbed cuffs and hem|"
        "Hand-wash or dry-clean",
        size_step=0.0,
    ),
    _leaf(
        "Fashion > Shoes > Sneakers", 85, 0.4,
        "Sneakers|Low-Top Sneakers|High-Top Sneakers|Slip-On Sneakers|Court Sneakers",
        "Classic|Minimalist|Retro|Everyday|Platform|Vegan",
        "Leather|Canvas|Suede|Knit|Recycled Mesh",
        "US 6|US 7|US 8|US 9|US 10|US 11|US 12",
        "everyday wear|city walking|travel|weekend errands",
        "Cushioned insole for all-day comfort|Durable rubber cupsole|Breathable lining|"
        "Goes with jeans, chinos or dresses",
        size_step=0.0,
    ),
    _leaf(
        "Fashion > Accessories > Backpacks", 55, 0.5,
        "Backpack|Laptop Backpack|Rolltop Backpack|Daypack|Travel Backpack|Mini Backpack",
        "Water-Resistant|Minimalist|Anti-Theft|Lightweight|Expandable|Commuter",
        "Recycled Nylon|Waxed Canvas|Leather|Cordura|Polyester",
        "15L|20L|25L|30L|40L",
        "commuting|weekend trips|carry-on travel|school and campus",
        "Padded sleeve fits up to a 16-inch laptop|"
        "Hidden back pocket for passport and wallet|Luggage pass-through strap|"
        "Made from recycled materials",
        size_key="capacity",
        size_step=0.1,
    ),
    _leaf(
        "Fashion > Accessories > Sunglasses", 45, 0.6,
        "Sunglasses|Aviator Sunglasses|Round Sunglasses|Cat-Eye Sunglasses|Sport Sunglasses|"
        "Wayfarer Sunglasses",
        "Polarized|Oversized|Retro|Lightweight|Mirrored|Classic",
        "Tortoiseshell|Matte Black|Gold Metal|Clear Acetate|Gunmetal",
        "50mm|52mm|54mm|58mm",
        "driving|beach days|everyday wear|skiing and sports",
        "100% UVA/UVB protection|Polarized lenses cut glare off water and roads|"
        "Spring hinges for a comfortable fit|Includes a hard case and cleaning cloth",
        variant_key="frame",
        size_key="lens_width",
        size_step=0.0,
    ),
    # ---- Toys ------------------------------------------------------------------------
    _leaf(
        "Toys > Building > Building Sets", 45, 0.6,
        "Building Set|Construction Kit|Magnetic Tiles Set|Brick Set|Marble Run|STEM Robot Kit",
        "Creative|Deluxe|Classic|Starter|Educational|Ultimate",
        "Space|City|Castle|Dinosaur|Race Car|Pirate Ship|Robot",
        "100 pieces|250 pieces|500 pieces|1000 pieces",
        "ages 6 and up|rainy afternoons|budding engineers|family build nights",
        "Compatible with major brick brands|Step-by-step illustrated instructions|"
        "Builds three different models|Comes with a storage box",
        variant_key="theme",
        size_key="piece_count",
        size_step=0.4,
    ),
    _leaf(
        "Toys > Games > Board Games", 30, 0.4,
        "Board Game|Strategy Game|Party Game|Card Game|Cooperative Game|Trivia Game",
        "Family|Award-Winning|Fast-Paced|Classic|Deluxe|Hilarious",
        "Fantasy|Space|Mystery|Pirate|Farming|Word",
        "2-4 players|2-6 players|3-8 players|1-5 players",
        "family game night|parties|two-player evenings|ages 8 and up",
        "Learn in 10 minutes, play in 30|Hundreds of hours of replay value|"
        "Beautifully illustrated components|Plays 2 to 6 players",
        variant_key="theme",
        size_key="players",
        size_step=0.0,
    ),
    _leaf(
        "Toys > Games > Jigsaw Puzzles", 20, 0.4,
        "Jigsaw Puzzle|Wooden Puzzle|Panorama Puzzle|Puzzle Set|Mini Puzzle",
        "Challenging|Relaxing|Colourful|Vintage|Family|Glow-in-the-Dark",
        "Landscape|Cats|World Map|Botanical|Cityscape|Ocean|Art Deco",
        "300 pieces|500 pieces|1000 pieces|1500 pieces|2000 pieces",
        "quiet evenings|family time|puzzle lovers|gifting",
        "Precision-cut pieces that fit snugly|Includes a full-size reference poster|"
        "Made from thick recycled board|Finished size 27 x 20 inches",
        variant_key="theme",
        size_key="piece_count",
        size_step=0.15,
    ),
    _leaf(
        "Toys > Dolls & Figures > Action Figures", 18, 0.5,
        "Action Figure|Figure Set|Collectible Figure|Doll|Playset",
        "Poseable|Collectible|Deluxe|Mini|Light-Up|Classic",
        "Space Ranger|Dinosaur|Superhero|Knight|Astronaut|Mermaid",
        "4 inch|6 inch|7 inch|12 inch",
        "imaginative play|collectors|ages 4 and up|birthday gifts",
        "20 points of articulation|Includes accessories and a display stand|"
        "Durable enough for everyday play|Collect the whole series",
        variant_key="character",
        size_key="height",
        size_step=0.25,
    ),
    _leaf(
        "Toys > Outdoor > Scooters", 70, 0.5,
        "Kick Scooter|Scooter|Balance Bike|Kids Trampoline|Ride-On Car",
        "Foldable|Light-Up|Adjustable|Sturdy|3-Wheel|Lightweight",
        "Red|Blue|Pink|Green|Black|Purple",
        "Ages 2-4|Ages 3-5|Ages 6-12|36 inch|48 inch",
        "ages 3 and up|the driveway and park|learning balance|active play",
        "LED light-up wheels|Adjustable handlebar grows with your child|"
        "Folds in one step for storage|Supports riders up to 100 lb",
        variant_key="colour",
        size_step=0.15,
    ),
    _leaf(
        "Toys > Baby & Toddler > Plush Toys", 18, 0.45,
        "Plush Toy|Stuffed Animal|Teddy Bear|Plush Bunny|Plush Dinosaur|Lovey Blanket",
        "Cuddly|Soft|Jumbo|Weighted|Musical|Classic",
        "Organic Cotton|Faux Fur|Minky|Knit|Velour",
        "8 inch|12 inch|16 inch|24 inch",
        "newborns and up|bedtime|baby showers|nap time",
        "Embroidered eyes that are safe for babies|Machine washable|"
        "Tested to meet toy safety standards|Irresistibly soft to hug",
        size_step=0.3,
    ),
    _leaf(
        "Toys > Arts & Crafts > Art Sets", 25, 0.5,
        "Art Set|Paint Set|Drawing Kit|Sketchbook Set|Craft Kit|Art Case",
        "Deluxe|Beginner|Professional|Washable|Travel|Creative",
        "Watercolor|Acrylic|Oil Pastel|Gel Pen|Crayon|Marker",
        "24-Piece|48-Piece|72-Piece|150-Piece",
        "young artists|travel sketching|rainy day crafts|ages 5 and up",
        "Non-toxic, washable colours|Comes in a sturdy carrying case|"
        "Vibrant colours that blend easily|Everything a beginner needs in one box",
        variant_key="medium",
        size_key="piece_count",
        size_step=0.3,
    ),
    # ---- Grocery ---------------------------------------------------------------------
    _leaf(
        "Grocery > Coffee & Tea > Coffee Beans", 16, 0.35,
        "Whole Bean Coffee|Ground Coffee|Espresso Beans|Cold Brew Coffee|Coffee Pods|"
        "Decaf Coffee",
        "Single-Origin|Organic|Fair Trade|Small-Batch|Smooth|Bold",
        "Light Roast|Medium Roast|Dark Roast|French Roast|Espresso Roast|Breakfast Blend",
        "10 oz|12 oz|2 lb|1 kg|5 lb",
        "drip and pour-over|espresso|cold brew|your morning cup",
        "Notes of dark chocolate, cherry and caramel|"
        "Roasted in small batches and shipped within 48 hours|100% Arabica beans|"
        "Sourced directly from farmers in Colombia and Ethiopia",
        variant_key="roast",
        consumable=True,
        cycle_days=21,
        size_step=0.35,
    ),
    _leaf(
        "Grocery > Coffee & Tea > Tea", 9, 0.35,
        "Green Tea|Black Tea|Herbal Tea|Matcha|Chai|Oolong Tea",
        "Organic|Loose-Leaf|Ceremonial|Caffeine-Free|Premium|Calming",
        "Peppermint|Chamomile|Jasmine|Ginger Lemon|Vanilla|Hibiscus|Earl Grey",
        "20 bags|50 bags|100 bags|4 oz|100g",
        "a calm evening|an afternoon pick-me-up|iced tea|your morning ritual",
        "Whole-leaf tea in plastic-free pyramid bags|Steep for 3 to 5 minutes|"
        "Naturally rich in antioxidants|Sourced from family-owned estates",
        variant_key="flavour",
        consumable=True,
        cycle_days=30,
        size_step=0.25,
    ),
    _leaf(
        "Grocery > Snacks > Nuts & Trail Mix", 11, 0.4,
        "Trail Mix|Mixed Nuts|Almonds|Cashews|Snack Packs|Pistachios",
        "Roasted|Lightly Salted|Unsalted|Honey-Roasted|Organic|Raw",
        "Sea Salt|Dark Chocolate|Smoked|Chili Lime|Maple|Cinnamon",
        "8 oz|16 oz|24 oz|1.5 lb|3 lb",
        "snacking on the go|hiking trips|lunchboxes|late-night cravings",
        "A good source of plant protein and fibre|Resealable bag keeps them fresh|"
        "No artificial flavours or preservatives|Roasted in small batches",
        variant_key="flavour",
        consumable=True,
        cycle_days=18,
        size_step=0.35,
    ),
    _leaf(
        "Grocery > Pantry > Olive Oil", 15, 0.45,
        "Extra Virgin Olive Oil|Olive Oil|Avocado Oil|Olive Oil Spray|Infused Olive Oil",
        "Cold-Pressed|Organic|First Harvest|Robust|Delicate|Unfiltered",
        "Greek|Italian|Spanish|Californian|Tunisian",
        "250ml|500ml|16.9 fl oz|750ml|1L|3L",
        "salads and dipping|everyday cooking|drizzling over pasta|roasting vegetables",
        "Cold-pressed within hours of harvest|A peppery, fruity finish|"
        "Packed in dark glass to protect the flavour|Harvest date printed on every bottle",
        variant_key="origin",
        consumable=True,
        cycle_days=35,
        size_step=0.35,
    ),
    _leaf(
        "Grocery > Pantry > Pasta Sauce", 7, 0.35,
        "Pasta Sauce|Marinara|Pesto|Arrabbiata|Vodka Sauce|Tomato Basil Sauce",
        "Slow-Simmered|Organic|Homestyle|Spicy|Classic|Creamy",
        "San Marzano Tomato|Roasted Garlic|Basil|Mushroom|Four Cheese",
        "6.7 oz|16 oz|24 oz|32 oz",
        "weeknight pasta|pizza night|lasagna|dipping breadsticks",
        "Made with Italian tomatoes and extra virgin olive oil|No added sugar|"
        "Simmered slowly for a rich, deep flavour|Ready in minutes",
        variant_key="flavour",
        consumable=True,
        cycle_days=20,
        size_step=0.25,
    ),
    _leaf(
        "Grocery > Breakfast > Cereal", 6, 0.35,
        "Granola|Oatmeal|Muesli|Cereal|Overnight Oats|Pancake Mix",
        "Crunchy|Whole-Grain|Gluten-Free|High-Protein|Low-Sugar|Organic",
        "Honey Almond|Blueberry|Maple Pecan|Chocolate|Cinnamon|Vanilla",
        "11 oz|12 oz|16 oz|32 oz|2 lb",
        "a quick breakfast|topping yogurt|snacking|kids' breakfasts",
        "Made with whole-grain oats|8g of protein per serving|"
        "Baked in small batches with real fruit|Non-GMO ingredients",
        variant_key="flavour",
        consumable=True,
        cycle_days=14,
        size_step=0.3,
    ),
    _leaf(
        "Grocery > Beverages > Sparkling Water", 6, 0.35,
        "Sparkling Water|Sparkling Juice|Kombucha|Electrolyte Drink|Cold Brew Tea",
        "Zero-Sugar|Lightly Sweetened|Organic|Refreshing|Caffeine-Free|Probiotic",
        "Lime|Grapefruit|Black Cherry|Peach|Watermelon|Berry",
        "12 fl oz|16 oz|12-Pack|24-Pack",
        "staying hydrated|mixing mocktails|an afternoon pick-me-up|the office fridge",
        "Zero calories and no artificial sweeteners|"
        "Naturally flavoured with real fruit essence|Crisp, bold bubbles|Recyclable cans",
        variant_key="flavour",
        consumable=True,
        cycle_days=12,
        size_step=0.45,
    ),
    _leaf(
        "Grocery > Pet Food > Dog Food", 45, 0.5,
        "Dry Dog Food|Wet Dog Food|Dog Treats|Puppy Food|Dental Chews",
        "Grain-Free|High-Protein|Natural|Limited-Ingredient|Healthy Weight|Senior",
        "Chicken|Salmon|Beef|Lamb|Turkey and Sweet Potato|Duck",
        "4 lb|12-Pack|12 lb|24 lb|30 lb",
        "adult dogs|puppies|sensitive stomachs|senior dogs",
        "Real meat is the first ingredient|No corn, wheat or soy|"
        "Supports healthy digestion with probiotics|Made in the USA",
        variant_key="flavour",
        consumable=True,
        cycle_days=30,
        size_step=0.4,
    ),
)  # fmt: skip

BRANDS: dict[str, tuple[str, ...]] = {
    "Home": (
        "Hearthwell", "Oakridge Home", "Brightnest", "Copperleaf", "Kitchara", "Linenmoor",
        "Stonebrook", "Maison Vell", "Tidyfold", "Emberline", "Northcraft",
    ),
    "Electronics": (
        "Voltrix", "Sonaro", "Nexbeam", "Aurion", "Kinetiq", "Pixelon", "Corvane", "Lumatek",
        "Zephyra", "Ostara", "Quantel",
    ),
    "Beauty": (
        "Dewlane", "Verabelle", "Glowfield", "Nuvessa", "Pure Botanica", "Saltwater & Sage",
        "Aurelle", "Mirabloom", "Skinfolk", "Halcyon Beauty", "Lumen & Co",
    ),
    "Sports": (
        "Trailpeak", "Stridewell", "Ironvale", "Summit Forge", "Kinetic Edge", "Northpass",
        "Velocita", "Apexion", "Rivermark Outdoor", "Flexcore", "Basecamp Co",
    ),
    "Fashion": (
        "Harbor & Pine", "Madder Row", "Threadline", "Cobalt Lane", "Wren & Fable", "Urbanmoss",
        "Alder Street", "Linea Nord", "Saltmarsh", "Everhem", "Foxglove Studio",
    ),
    "Toys": (
        "Tinkertree", "Bramble & Bear", "Funforge", "Puzzleworks", "Kiddlebop", "Starhop",
        "Brickbay", "Little Voyager", "Wonderkin", "Popsicle Lab",
    ),
    "Grocery": (
        "Roast & Ridge", "Morning Harbor", "Golden Grove", "Pantry Lane", "Wildmeadow",
        "Casa Oliva", "Highland Leaf", "Crunchwell", "Trueharvest", "Barkside",
        "Fieldstone Foods",
    ),
}  # fmt: skip
"""Invented, plausible brand names per top-level category."""

TOP_CATEGORIES: tuple[str, ...] = tuple(BRANDS)
"""The top-level categories, in a fixed order (the columns of `top_preference`)."""

# How much of the shop's traffic each top-level category draws (shapes user tastes).
_TOP_SHARE = {
    "Home": 0.16,
    "Electronics": 0.18,
    "Beauty": 0.13,
    "Sports": 0.13,
    "Fashion": 0.16,
    "Toys": 0.10,
    "Grocery": 0.14,
}

# How a variant reads in a description sentence, by `Leaf.variant_key`.
_VARIANT_PHRASES = {
    "material": "made from {v}",
    "fill": "with {v} fill",
    "colour": "in {v}",
    "finish": "in a {v} finish",
    "wash": "in {v}",
    "frame": "with a {v} frame",
    "scent": "with a {v} scent",
    "flavour": "in {v} flavour",
    "roast": "in a {v}",
    "key_ingredient": "with {v}",
    "spf": "with {v} protection",
    "shade": "in the shade {v}",
    "notes": "with notes of {v}",
    "theme": "with a {v} theme",
    "character": "in a {v} design",
    "display": "with a {v} display",
    "switch": "with {v} switches",
    "technology": "with {v} technology",
    "origin": "made from {v} olives",
    "medium": "for {v} art",
}
# Words that keep their capitals inside a sentence.
_PROPER_WORDS = {
    "German",
    "Egyptian",
    "Turkish",
    "Damascus",
    "Pima",
    "Japanese-Style",
    "Google",
    "Roku",
}
_LOWER_VARIANT_KEYS = {"material", "fill", "colour", "finish", "wash", "frame", "technology"}
_CLOSING_SENTENCES = (
    "Backed by a 2-year {brand} warranty.",
    "Ships free, with 30-day returns.",
    "Thoughtfully designed by {brand}.",
    "A customer favourite at {rating} out of 5 stars.",
)

# Relative traffic by hour of day (local time): quiet nights, a lunch bump, busy evenings.
_HOUR_PROFILE = np.array(
    [0.45, 0.28, 0.16, 0.1, 0.08, 0.1, 0.22, 0.45, 0.65, 0.75, 0.8, 0.88,
     1.0, 0.95, 0.85, 0.82, 0.88, 1.0, 1.25, 1.55, 1.8, 1.75, 1.35, 0.85],
)  # fmt: skip
# Relative traffic by weekday, Monday first.
_WEEKDAY_PROFILE = np.array([0.92, 0.9, 0.92, 0.96, 1.04, 1.32, 1.3])

_COUNTRIES = {
    "US": 0.52, "GB": 0.1, "CA": 0.08, "DE": 0.06, "AU": 0.05, "FR": 0.04, "NL": 0.03,
    "ES": 0.03, "IE": 0.02, "SE": 0.02, "NZ": 0.02, "IT": 0.03,
}  # fmt: skip
_CHANNELS = {
    "organic_search": 0.3,
    "direct": 0.2,
    "social": 0.17,
    "paid_search": 0.13,
    "email": 0.1,
    "referral": 0.1,
}
_DEVICES = {"mobile": 0.58, "desktop": 0.34, "tablet": 0.08}
_AGE_BANDS = {"18-24": 0.14, "25-34": 0.3, "35-44": 0.25, "45-54": 0.17, "55-64": 0.1, "65+": 0.04}


# --------------------------------------------------------------------------------------
# Public API
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class DemoConfig:
    """What to generate. Everything, `seed` included, determines the output exactly."""

    seed: int = 42
    n_items: int = 5000
    n_users: int = 2000
    days: int = 90
    end: datetime = datetime(2026, 11, 1, tzinfo=UTC)
    """The last day of activity (its date counts; a naive datetime is read as UTC)."""
    sessions_per_user_day: float = 0.11
    """Mean sessions per user per day; individual users vary heavy-tailed around it."""
    search_rate: float = 0.35
    """Share of sessions that start with a search."""
    cart_rate: float = 0.10
    """Mean share of views that are added to the cart."""
    purchase_rate: float = 0.5
    """Mean share of carted items that are bought."""
    rating_rate: float = 0.35
    """Share of purchases rated later."""
    repeat_rate: float = 0.5
    """Chance that a purchase of a consumable is bought again after its cycle."""

    def __post_init__(self) -> None:
        def fail(message: str) -> None:
            raise ConfigError(f"DemoConfig: {message}")

        for name in ("seed", "n_items", "n_users", "days"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | np.integer):
                fail(f"{name} must be an integer, got {value!r}")
        if self.seed < 0:
            fail(f"seed must be >= 0, got {self.seed}")
        if self.n_items < len(LEAVES):
            fail(f"n_items must be >= {len(LEAVES)} (one per category), got {self.n_items}")
        if not 1 <= self.n_users <= 10_000_000:
            fail(f"n_users must be between 1 and 10,000,000, got {self.n_users}")
        if self.n_items > 10_000_000:
            fail(f"n_items must be <= 10,000,000, got {self.n_items}")
        if not 1 <= self.days <= 3650:
            fail(f"days must be between 1 and 3650, got {self.days}")
        if not isinstance(self.end, datetime):
            fail(f"end must be a datetime, got {self.end!r}")
        if self.end.tzinfo is None:
            object.__setattr__(self, "end", self.end.replace(tzinfo=UTC))
        if not 0 < self.sessions_per_user_day <= 20:
            fail(f"sessions_per_user_day must be in (0, 20], got {self.sessions_per_user_day}")
        for name in ("search_rate", "cart_rate", "purchase_rate", "rating_rate", "repeat_rate"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                fail(f"{name} must be between 0 and 1, got {value}")

    @property
    def first_day(self) -> date:
        """The first day of activity."""
        return self.last_day - timedelta(days=self.days - 1)

    @property
    def last_day(self) -> date:
        """The last day of activity."""
        return self.end.astimezone(UTC).date()


@dataclass(frozen=True, eq=False)
class DemoStore:
    """A generated store: canonical item, user and event frames plus the hidden tastes.

    `latent` holds numpy arrays: `top_categories`, `leaves`, `brands` (names, the column
    order of the matrices), per user (rows in `users` order) `top_preference` (users x top
    categories), `leaf_preference` (users x leaves), `brand_affinity` (users x brands),
    `favourite_brands` (users x 3 brand indices), `price_preference` (log offset from each
    leaf's median price), `activity` (mean sessions a day) and `preferred_hour`, and per
    item (rows in `items` order) `item_leaf`, `item_brand`, `item_popularity` (share within
    its leaf) and `item_quality`.
    """

    items: pd.DataFrame
    users: pd.DataFrame
    events: pd.DataFrame
    config: DemoConfig = field(default_factory=DemoConfig)
    latent: dict[str, np.ndarray] = field(default_factory=dict)


def generate(config: DemoConfig | None = None, progress: bool = False) -> DemoStore:
    """Generate a demo store; the same config always gives the same store."""
    cfg = config or DemoConfig()
    rng = np.random.default_rng(cfg.seed)
    with tqdm(total=6, desc="demo store", unit="step", disable=not progress) as bar:
        bar.set_postfix_str("catalog")
        catalog = _make_catalog(rng, cfg)
        bar.update()
        bar.set_postfix_str("tastes")
        sim = _Simulation(rng, cfg, catalog, _make_tastes(rng, cfg, catalog))
        bar.update()
        for name, phase in (
            ("sessions", sim.main_sessions),
            ("repeat purchases", sim.repeat_purchases),
            ("ratings", sim.ratings),
        ):
            bar.set_postfix_str(name)
            phase()
            bar.update()
        bar.set_postfix_str("frames")
        store = sim.build()
        bar.update()
    return store


def write_demo(store: DemoStore, directory: Path) -> dict[str, Path]:
    """Write `items.jsonl`, `users.jsonl` and `events.csv` into `directory`.

    JSON Lines hold one object per line with attributes as JSON objects and timestamps as
    ISO-8601 with `Z`; the CSV's header is the canonical event columns, its timestamps
    ISO-8601 with `Z`, and missing values are empty cells.
    """
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    paths = {
        "items": directory / "items.jsonl",
        "users": directory / "users.jsonl",
        "events": directory / "events.csv",
    }
    write_jsonl(store.items, paths["items"])
    write_jsonl(store.users, paths["users"])
    events = store.events.loc[:, list(EVENT_COLUMNS)].copy()
    events["timestamp"] = events["timestamp"].dt.strftime("%Y-%m-%dT%H:%M:%SZ")
    events.to_csv(paths["events"], index=False, lineterminator="\n", encoding="utf-8")
    return paths


# --------------------------------------------------------------------------------------
# Catalog
# --------------------------------------------------------------------------------------


@dataclass
class _Catalog:
    """The catalog as arrays (one row per item) plus the words its titles are made of."""

    frame: pd.DataFrame
    leaf: np.ndarray
    top: np.ndarray
    brand: np.ndarray
    price: np.ndarray
    rel_log_price: np.ndarray  # log(price / leaf median)
    quality: np.ndarray
    popularity: np.ndarray  # share within the leaf
    created: np.ndarray  # unix seconds
    consumable: np.ndarray
    leaf_items: list[np.ndarray]
    words: dict[str, list[str]]  # brand, adjective, variant, noun, size per item
    brand_names: list[str]
    brand_top: np.ndarray


def _pick(rng: np.random.Generator, lengths: np.ndarray) -> np.ndarray:
    """A uniform index below `lengths[i]` for every row (0 where the length is 0)."""
    return np.floor(rng.random(lengths.size) * np.maximum(lengths, 1)).astype(np.int64)


def _categorical(rng: np.random.Generator, weights: dict[str, float], n: int) -> np.ndarray:
    """n draws of the keys of `weights`, as an object array."""
    keys = np.array(list(weights), dtype=object)
    p = np.array(list(weights.values()), dtype=float)
    return keys[rng.choice(len(keys), size=n, p=p / p.sum())]


def _make_catalog(rng: np.random.Generator, cfg: DemoConfig) -> _Catalog:
    n, n_leaves = cfg.n_items, len(LEAVES)
    tops = np.array([TOP_CATEGORIES.index(leaf.top) for leaf in LEAVES])
    brand_names = [b for top in TOP_CATEGORIES for b in BRANDS[top]]
    brand_top = np.array([t for t, top in enumerate(TOP_CATEGORIES) for _ in BRANDS[top]])
    brand_offset = np.concatenate([[0], np.cumsum([len(BRANDS[t]) for t in TOP_CATEGORIES])])

    # items per leaf: one each, the rest by a random assortment depth
    depth = rng.gamma(4.0, size=n_leaves)
    counts = 1 + rng.multinomial(n - n_leaves, depth / depth.sum())
    leaf = rng.permutation(np.repeat(np.arange(n_leaves), counts))
    top = tops[leaf]

    # brands: a few big brands per top category, a long tail of small ones
    brand = np.empty(n, dtype=np.int64)
    brand_weight = rng.gamma(1.5, size=len(brand_names))
    for t in range(len(TOP_CATEGORIES)):
        rows = np.flatnonzero(top == t)
        lo, hi = brand_offset[t], brand_offset[t + 1]
        w = brand_weight[lo:hi]
        brand[rows] = lo + rng.choice(hi - lo, size=rows.size, p=w / w.sum())
    brand_tier = rng.normal(0.0, 0.22, size=len(brand_names))  # premium vs budget brands

    n_nouns = np.array([len(lf.nouns) for lf in LEAVES])[leaf]
    n_adj = np.array([len(lf.adjectives) for lf in LEAVES])[leaf]
    n_var = np.array([len(lf.variants) for lf in LEAVES])[leaf]
    n_size = np.array([len(lf.sizes) for lf in LEAVES])[leaf]
    noun, adj, var, size = (_pick(rng, k) for k in (n_nouns, n_adj, n_var, n_size))

    def title(i: int) -> str:
        lf = LEAVES[leaf[i]]
        text = (
            f"{brand_names[brand[i]]} {lf.adjectives[adj[i]]} {lf.variants[var[i]]} "
            f"{lf.nouns[noun[i]]}"
        )
        return f"{text}, {lf.sizes[size[i]]}" if lf.sizes else text

    titles = [title(i) for i in range(n)]
    for _ in range(8):  # re-draw duplicate titles so nearly all are unique
        dup = np.flatnonzero(pd.Series(titles).duplicated().to_numpy())
        if dup.size == 0:
            break
        adj[dup] = _pick(rng, n_adj[dup])
        var[dup] = _pick(rng, n_var[dup])
        size[dup] = _pick(rng, n_size[dup])
        for j in dup.tolist():
            titles[j] = title(j)

    # prices: log-normal around the leaf median, shifted by brand tier and size
    medians = np.array([lf.median_price for lf in LEAVES])
    sigmas = np.array([lf.price_sigma for lf in LEAVES])
    steps = np.array([lf.size_step for lf in LEAVES])
    size_centre = (np.maximum(n_size, 1) - 1) / 2.0
    log_price = (
        np.log(medians[leaf])
        + sigmas[leaf] * rng.standard_normal(n) * 0.85
        + brand_tier[brand]
        + steps[leaf] * (size - size_centre)
    )
    raw = np.exp(log_price)
    cents = np.where(rng.random(n) < 0.8, 0.99, np.where(rng.random(n) < 0.5, 0.49, 0.95))
    price = np.where(raw >= 10, np.floor(raw) + cents, np.floor(raw * 2) / 2 + 0.49)
    price = np.round(np.maximum(price, 0.99), 2)
    rel_log_price = np.log(price) - np.log(medians[leaf])

    # popularity: a power law within each leaf (random rank), nudged by quality
    quality = rng.standard_normal(n)
    order = np.lexsort((rng.random(n), leaf))
    rank = np.empty(n, dtype=np.int64)
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    rank[order] = np.arange(n) - np.repeat(starts, counts)
    raw_pop = (rank + 1.0) ** -1.25 * np.exp(0.25 * quality)
    popularity = raw_pop / np.bincount(leaf, weights=raw_pop, minlength=n_leaves)[leaf]

    seconds_end = _epoch(cfg.last_day) + DAY
    created = seconds_end - 365 * DAY + np.floor(rng.random(n) * 365 * DAY).astype(np.int64)
    # the best sellers have been around for a while
    veteran = max(_epoch(cfg.first_day) - 30 * DAY, seconds_end - 365 * DAY)
    created = np.where(rank < 3, np.minimum(created, veteran), created)
    in_stock = rng.random(n) < 0.92
    rating_avg = np.round(np.clip(4.05 + 0.45 * quality, 1.0, 5.0), 1)
    rating_count = rng.poisson(popularity * counts[leaf] * 40.0 + 0.5)

    # descriptions: 1-3 sentences from templates with the title's words
    opener = rng.integers(0, 3, size=n)
    use = _pick(rng, np.array([len(lf.uses) for lf in LEAVES])[leaf])
    feature = _pick(rng, np.array([len(lf.features) for lf in LEAVES])[leaf])
    has_feature = rng.random(n) < 0.8
    has_close = rng.random(n) < 0.45
    close = rng.integers(0, len(_CLOSING_SENTENCES) + 2, size=n)

    words: dict[str, list[str]] = {k: [] for k in ("brand", "adjective", "variant", "noun")}
    words["size"] = []
    descriptions: list[str] = []
    attributes: list[str] = []
    for i in range(n):
        lf = LEAVES[leaf[i]]
        b, a, v, nn = (
            brand_names[brand[i]],
            lf.adjectives[adj[i]],
            lf.variants[var[i]],
            lf.nouns[noun[i]],
        )
        s = lf.sizes[size[i]] if lf.sizes else ""
        for key, value in (("brand", b), ("adjective", a), ("variant", v), ("noun", nn)):
            words[key].append(value)
        words["size"].append(s)
        shown = _soft_lower(v) if lf.variant_key in _LOWER_VARIANT_KEYS else v
        phrase = _VARIANT_PHRASES.get(lf.variant_key, "in {v}").format(v=shown)
        u = lf.uses[use[i]]
        if opener[i] == 0:
            text = f"{b}'s {_soft_lower(a)} {_soft_lower(nn)} {phrase}, made for {u}."
        elif opener[i] == 1:
            text = f"Made for {u}: the {b} {a} {nn} {phrase}."
        else:
            text = f"{a} {_soft_lower(nn)} by {b}, {phrase}, ideal for {u}."
        sentences = [text]
        if has_feature[i]:
            sentences.append(lf.features[feature[i]] + ".")
        if has_close[i]:
            if close[i] >= len(_CLOSING_SENTENCES) and s:
                sentences.append(f"Available in {s}.")
            else:
                template = _CLOSING_SENTENCES[close[i] % len(_CLOSING_SENTENCES)]
                sentences.append(template.format(brand=b, rating=f"{rating_avg[i]:.1f}"))
        descriptions.append(" ".join(sentences))
        attrs: dict[str, Any] = {lf.variant_key: v}
        if s:
            attrs[lf.size_key] = s
        attrs["rating_avg"] = float(rating_avg[i])
        attrs["rating_count"] = int(rating_count[i])
        attributes.append(json.dumps(attrs, sort_keys=True, ensure_ascii=False))

    width = max(6, len(str(n)))
    frame = pd.DataFrame(
        {
            "item_id": [f"SKU-{i + 1:0{width}d}" for i in range(n)],
            "title": titles,
            "description": descriptions,
            "category": [LEAVES[k].path for k in leaf],
            "brand": [brand_names[k] for k in brand],
            "price": price,
            "currency": "USD",
            "in_stock": in_stock,
            "attributes": attributes,
            "created_at": created.astype("datetime64[s]"),
        }
    )
    order_in_leaf = np.argsort(leaf, kind="stable")
    leaf_items = np.split(order_in_leaf, np.cumsum(counts)[:-1])
    return _Catalog(
        frame=conform("items", frame),
        leaf=leaf,
        top=top,
        brand=brand,
        price=price,
        rel_log_price=rel_log_price,
        quality=quality,
        popularity=popularity,
        created=created,
        consumable=np.array([lf.consumable for lf in LEAVES])[leaf],
        leaf_items=leaf_items,
        words=words,
        brand_names=brand_names,
        brand_top=brand_top,
    )


def _epoch(day: date) -> int:
    """Unix seconds at midnight UTC of `day`."""
    return int(datetime(day.year, day.month, day.day, tzinfo=UTC).timestamp())


# --------------------------------------------------------------------------------------
# Users and their tastes
# --------------------------------------------------------------------------------------


@dataclass
class _Tastes:
    """Latent tastes, one row per user."""

    top_preference: np.ndarray
    leaf_preference: np.ndarray
    brand_affinity: np.ndarray
    favourite_brands: np.ndarray
    price_preference: np.ndarray
    price_tolerance: np.ndarray
    activity: np.ndarray
    preferred_hour: np.ndarray


def _make_tastes(rng: np.random.Generator, cfg: DemoConfig, cat: _Catalog) -> _Tastes:
    u, n_top, n_leaves = cfg.n_users, len(TOP_CATEGORIES), len(LEAVES)
    leaf_top = np.array([TOP_CATEGORIES.index(lf.top) for lf in LEAVES])

    # Dirichlet over top categories, concentrated on a few (alphas sum to 1.2)
    alpha = 1.2 * np.array([_TOP_SHARE[t] for t in TOP_CATEGORIES])
    g = rng.gamma(alpha, size=(u, n_top)) + 1e-12
    top_pref = g / g.sum(axis=1, keepdims=True)
    # within each top category, a Dirichlet over its leaves
    h = rng.gamma(0.6, size=(u, n_leaves)) + 1e-12
    group = np.zeros((n_leaves, n_top))
    group[np.arange(n_leaves), leaf_top] = 1.0
    within = h / (h @ group)[:, leaf_top]
    leaf_pref = top_pref[:, leaf_top] * within

    # brand affinity: mild likes and dislikes, plus three favourites from liked categories
    n_brands = len(cat.brand_names)
    affinity = 0.35 * rng.standard_normal((u, n_brands))
    brand_logp = np.log(top_pref[:, cat.brand_top] + 1e-9)
    keys = brand_logp + rng.gumbel(size=(u, n_brands))
    favourites = np.argsort(-keys, axis=1, kind="stable")[:, :3]
    np.put_along_axis(
        affinity, favourites, np.take_along_axis(affinity, favourites, 1) + 1.4, axis=1
    )

    price_pref = rng.normal(0.0, 0.35, size=u)
    price_tol = rng.uniform(0.45, 0.9, size=u)
    sigma = 1.0
    activity = np.minimum(
        rng.lognormal(np.log(cfg.sessions_per_user_day) - sigma**2 / 2, sigma, size=u), 4.0
    )
    # preferred hour: evening people, lunch-breakers, early birds and night owls
    kind = rng.choice(4, size=u, p=[0.6, 0.15, 0.15, 0.1])
    centre = np.array([20.3, 12.5, 8.0, 23.3])[kind]
    spread = np.array([1.3, 1.0, 1.0, 1.2])[kind]
    hour = (centre + spread * rng.standard_normal(u)) % 24.0
    return _Tastes(
        top_preference=top_pref,
        leaf_preference=leaf_pref,
        brand_affinity=affinity,
        favourite_brands=favourites,
        price_preference=price_pref,
        price_tolerance=price_tol,
        activity=activity,
        preferred_hour=hour,
    )


# --------------------------------------------------------------------------------------
# Behaviour
# --------------------------------------------------------------------------------------


@dataclass
class _Batch:
    """Events under construction; sessions are global indices, -1 for none."""

    session: np.ndarray
    user: np.ndarray
    item: np.ndarray  # -1 for none
    etype: np.ndarray
    value: np.ndarray
    query: np.ndarray  # object: str or None
    ts: np.ndarray  # unix seconds
    key: np.ndarray  # order within the session

    @staticmethod
    def concat(batches: list[_Batch]) -> _Batch:
        """All batches as one."""
        return _Batch(
            *(
                np.concatenate([getattr(b, f) for b in batches])
                for f in ("session", "user", "item", "etype", "value", "query", "ts", "key")
            )
        )


class _Simulation:
    """Sessions, the funnel, repeat purchases and ratings, vectorised over all users."""

    def __init__(
        self, rng: np.random.Generator, cfg: DemoConfig, cat: _Catalog, tastes: _Tastes
    ) -> None:
        self.rng, self.cfg, self.cat, self.tastes = rng, cfg, cat, tastes
        self.window_start = _epoch(cfg.first_day)
        self.window_end = _epoch(cfg.last_day) + DAY
        self.batches: list[_Batch] = []
        self.n_sessions = 0
        self.z_norm = 0.0
        leaf_share = np.array([_TOP_SHARE[lf.top] for lf in LEAVES])
        per_top = np.bincount([TOP_CATEGORIES.index(lf.top) for lf in LEAVES])
        self.leaf_share = leaf_share / per_top[[TOP_CATEGORIES.index(lf.top) for lf in LEAVES]]
        self.leaf_share /= self.leaf_share.sum()

    # ---- building blocks -------------------------------------------------------------

    def _hours(self, users: np.ndarray) -> np.ndarray:
        """Seconds after midnight for sessions of `users` (own hour or the shop's rhythm)."""
        rng, n = self.rng, users.size
        own = rng.random(n) < 0.55
        h_own = (self.tastes.preferred_hour[users] + 1.2 * rng.standard_normal(n)) % 24.0
        h_shop = rng.choice(24, size=n, p=_HOUR_PROFILE / _HOUR_PROFILE.sum()) + rng.random(n)
        hours = np.where(own, h_own, h_shop)
        return np.minimum((hours * 3600).astype(np.int64), DAY - 1)

    def _leaves(self, users: np.ndarray, explore: float = 0.06) -> np.ndarray:
        """A leaf per row: from the user's leaf preference, sometimes anywhere."""
        rng, n = self.rng, users.size
        cum = np.cumsum(self.tastes.leaf_preference[users], axis=1)
        u = rng.random(n) * cum[:, -1]
        mine = np.minimum((cum < u[:, None]).sum(axis=1), len(LEAVES) - 1)
        anywhere = rng.choice(len(LEAVES), size=n, p=self.leaf_share)
        return np.where(rng.random(n) < explore, anywhere, mine)

    def _price_fit(self, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        """Log-weight of how well item prices suit users' price bands (broadcasts)."""
        t = self.tastes
        diff = self.cat.rel_log_price[items] - t.price_preference[users]
        return -(diff**2) / (2.0 * t.price_tolerance[users] ** 2)

    def _choose(self, users: np.ndarray, leaves: np.ndarray, times: np.ndarray) -> np.ndarray:
        """An item per row from its leaf: popularity x brand affinity x price fit.

        Items are only chosen once they exist (created before `times`), unless none do.
        Sampling is a Gumbel-max over each leaf's items, in chunks to bound memory.
        """
        rng, cat, t = self.rng, self.cat, self.tastes
        out = np.empty(users.size, dtype=np.int64)
        order = np.argsort(leaves, kind="stable")
        bounds = np.searchsorted(leaves[order], np.arange(len(LEAVES) + 1))
        for leaf in range(len(LEAVES)):
            rows = order[bounds[leaf] : bounds[leaf + 1]]
            if rows.size == 0:
                continue
            items = cat.leaf_items[leaf]
            base = np.log(cat.popularity[items])
            chunk = max(1, 2_000_000 // items.size)
            for lo in range(0, rows.size, chunk):
                r = rows[lo : lo + chunk]
                us = users[r]
                logw = (
                    base[None, :]
                    + t.brand_affinity[np.ix_(us, cat.brand[items])]
                    + self._price_fit(us[:, None], items[None, :])
                )
                exists = cat.created[items][None, :] <= times[r][:, None]
                exists |= ~exists.any(axis=1, keepdims=True)
                logw = np.where(exists, logw, -np.inf)
                pick = np.argmax(logw + rng.gumbel(size=logw.shape), axis=1)
                out[r] = items[pick]
        return out

    def _match(self, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        """How much a user likes an item once seen (drives carting and buying)."""
        return (
            0.6 * self.tastes.brand_affinity[users, self.cat.brand[items]]
            + self._price_fit(users, items)
            + 0.35 * self.cat.quality[items]
        )

    def _quantity(self, items: np.ndarray) -> np.ndarray:
        """Units per cart: mostly one, consumables sometimes two or three."""
        r = self.rng.random(items.size)
        cons = self.cat.consumable[items]
        return 1 + np.where(cons, (r < 0.18).astype(int) + (r < 0.05), (r < 0.04).astype(int))

    def _funnel(
        self, sessions: np.ndarray, users: np.ndarray, items: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(carted, quantity, purchased) for views; an item is carted once per session."""
        rng, cfg = self.rng, self.cfg
        z = self._match(users, items)
        p_cart = np.minimum(cfg.cart_rate * np.exp(z - self.z_norm), 0.75)
        cart = rng.random(items.size) < p_cart
        # keep only the first cart of an item within a session
        key = sessions.astype(np.int64) * (self.cat.leaf.size + 1) + items
        carted = np.flatnonzero(cart)
        _, first = np.unique(key[carted], return_index=True)
        keep = np.zeros(items.size, dtype=bool)
        keep[carted[first]] = True
        cart &= keep
        qty = self._quantity(items)
        p_buy = np.clip(cfg.purchase_rate + 0.12 * np.tanh(z - self.z_norm), 0.02, 0.95)
        buy = cart & (rng.random(items.size) < p_buy)
        return cart, qty, buy

    def _queries(self, items: np.ndarray, brand_bias: float = 0.0) -> np.ndarray:
        """A search query per item built from its words; some lower-case, some with typos."""
        rng, w, n = self.rng, self.cat.words, items.size
        p = np.array([0.3, 0.15, 0.2 + brand_bias, 0.1, 0.1, 0.05, 0.05, 0.05])
        form = rng.choice(p.size, size=n, p=p / p.sum())
        lower = rng.random(n) < 0.7
        typo = rng.random(n) < 0.07
        r1, r2 = rng.random(n), rng.random(n)
        out = np.empty(n, dtype=object)
        for k, i in enumerate(items.tolist()):
            noun, brand, adj = w["noun"][i], w["brand"][i], w["adjective"][i]
            variant, size = w["variant"][i], w["size"][i]
            leaf_name = LEAVES[self.cat.leaf[i]].name
            f = form[k]
            if f == 0:
                q = noun
            elif f == 1:
                q = f"{adj} {noun}"
            elif f == 2:
                q = f"{brand} {noun}"
            elif f == 3:
                q = f"{variant} {noun}"
            elif f == 4:
                q = leaf_name
            elif f == 5:
                q = f"{noun} {size}" if size else f"{brand} {leaf_name}"
            elif f == 6:
                q = brand
            else:
                q = f"{adj} {variant} {noun}"
            if lower[k]:
                q = q.lower()
            if typo[k]:
                q = _typo(q, float(r1[k]), float(r2[k]))
            out[k] = q
        return out

    def _emit(
        self,
        sess_user: np.ndarray,
        sess_start: np.ndarray,
        sess_query: np.ndarray,
        slot_session: np.ndarray,
        slot_pos: np.ndarray,
        slot_item: np.ndarray,
        click: np.ndarray,
        cart: np.ndarray,
        qty: np.ndarray,
        buy: np.ndarray,
    ) -> _Batch:
        """Events of a batch of sessions (local indices), timed from each session's start.

        Order within a session: [search] then per viewed item [click] view [add_to_cart],
        then the purchases at checkout. Gaps are whole seconds, so timestamps are strictly
        increasing within a session.
        """
        rng, cat = self.rng, self.cat
        offset = self.n_sessions
        searched = np.flatnonzero(np.array([q is not None for q in sess_query], dtype=bool))
        c, k, b = np.flatnonzero(click), np.arange(slot_item.size), np.flatnonzero(cart)
        p = np.flatnonzero(buy)

        def lognorm(median: float, sigma: float, n: int) -> np.ndarray:
            return rng.lognormal(np.log(median), sigma, size=n)

        session = np.concatenate([searched, slot_session[c], slot_session, slot_session[b]])
        session = np.concatenate([session, slot_session[p]])
        item = np.concatenate([np.full(searched.size, -1), slot_item[c], slot_item])
        item = np.concatenate([item, slot_item[b], slot_item[p]])
        etype = np.concatenate(
            [
                np.full(searched.size, _SEARCH),
                np.full(c.size, _CLICK),
                np.full(k.size, _VIEW),
                np.full(b.size, _CART),
                np.full(p.size, _PURCHASE),
            ]
        )
        key = np.concatenate(
            [
                np.zeros(searched.size, dtype=np.int64),
                3 * slot_pos[c] + 1,
                3 * slot_pos + 2,
                3 * slot_pos[b] + 3,
                1_000_000_000 + slot_pos[p],
            ]
        )
        value = np.concatenate(
            [
                np.full(searched.size + c.size + k.size, np.nan),
                qty[b].astype(float),
                np.round(cat.price[slot_item[p]] * qty[p], 2),
            ]
        )
        gap = np.concatenate(
            [
                np.zeros(searched.size),
                np.where(slot_pos[c] == 0, lognorm(9, 0.6, c.size), lognorm(22, 0.8, c.size)),
                np.where(click, rng.integers(1, 4, size=k.size), lognorm(40, 0.8, k.size)),
                lognorm(25, 0.7, b.size),
                np.zeros(p.size),
            ]
        )
        query = np.empty(session.size, dtype=object)
        query[: searched.size] = sess_query[searched]

        order = np.lexsort((key, session))
        session, item, etype, key, value, gap, query = (
            a[order] for a in (session, item, etype, key, value, gap, query)
        )
        first = np.ones(session.size, dtype=bool)
        first[1:] = session[1:] != session[:-1]
        prev_type = np.concatenate([[-1], etype[:-1]])
        is_buy = etype == _PURCHASE
        checkout = is_buy & (prev_type != _PURCHASE)
        gap = np.where(checkout, lognorm(110, 0.5, gap.size), gap)
        gap = np.where(is_buy & ~checkout, rng.integers(1, 3, size=gap.size), gap)
        gap = np.clip(np.rint(gap), 1, 1800).astype(np.int64)
        gap[first] = 0
        total = np.cumsum(gap)
        group = np.cumsum(first) - 1
        ts = sess_start[session] + total - total[np.flatnonzero(first)][group]

        self.n_sessions += sess_user.size
        return _Batch(
            session=session + offset,
            user=sess_user[session],
            item=item,
            etype=etype,
            value=value,
            query=query,
            ts=ts,
            key=key,
        )

    # ---- the phases ------------------------------------------------------------------

    def main_sessions(self) -> None:
        """Each user's own sessions over the window."""
        rng, cfg, t = self.rng, self.cfg, self.tastes
        n_sess = np.maximum(1, rng.poisson(t.activity * cfg.days))
        n_sess = np.minimum(n_sess, 4 * cfg.days)
        users = np.repeat(np.arange(cfg.n_users), n_sess)
        days = np.arange(cfg.days)
        weekday = np.array([(cfg.first_day + timedelta(days=int(d))).weekday() for d in days])
        day_weight = _WEEKDAY_PROFILE[weekday] * (1.0 + 0.15 * days / max(cfg.days, 1))
        day = rng.choice(cfg.days, size=users.size, p=day_weight / day_weight.sum())
        start = self.window_start + day * DAY + self._hours(users)

        n_views = np.minimum(rng.geometric(1 / 4.3, size=users.size), 40)
        slot_session = np.repeat(np.arange(users.size), n_views)
        slot_pos = np.arange(slot_session.size) - np.repeat(np.cumsum(n_views) - n_views, n_views)
        slot_user = users[slot_session]
        focus = self._leaves(users)
        wander = self._leaves(slot_user)
        stay = (slot_pos == 0) | (rng.random(slot_session.size) < 0.72)
        slot_leaf = np.where(stay, focus[slot_session], wander)
        slot_item = self._choose(slot_user, slot_leaf, start[slot_session])

        z = self._match(slot_user, slot_item)
        self.z_norm = float(np.log(np.mean(np.exp(z))))
        cart, qty, buy = self._funnel(slot_session, slot_user, slot_item)
        # durable goods are bought once per user: later carts of them are abandoned
        once = np.flatnonzero(buy & ~self.cat.consumable[slot_item])
        once = once[np.lexsort((slot_pos[once], start[slot_session[once]]))]
        owner = slot_user[once].astype(np.int64) * self.cat.leaf.size + slot_item[once]
        _, first = np.unique(owner, return_index=True)
        again = np.ones(once.size, dtype=bool)
        again[first] = False
        buy[once[again]] = False

        searched = rng.random(users.size) < cfg.search_rate
        click = rng.random(slot_session.size) < 0.45
        click |= (slot_pos == 0) & searched[slot_session]
        query = np.full(users.size, None, dtype=object)
        s = np.flatnonzero(searched)
        query[s] = self._queries(slot_item[slot_pos == 0][s])
        self.batches.append(
            self._emit(
                users, start, query, slot_session, slot_pos, slot_item, click, cart, qty, buy
            )
        )

    def repeat_purchases(self) -> None:
        """Consumables bought again after their cycle, in short replenishment sessions."""
        rng, cfg, cat = self.rng, self.cfg, self.cat
        cycle = np.array([lf.cycle_days for lf in LEAVES])
        batch = self.batches[0]
        for _ in range(12):
            bought = np.flatnonzero(
                (batch.etype == _PURCHASE) & (batch.item >= 0) & cat.consumable[batch.item]
            )
            bought = bought[rng.random(bought.size) < cfg.repeat_rate]
            items, users = batch.item[bought], batch.user[bought]
            due = batch.ts[bought] + (
                cycle[cat.leaf[items]] * rng.lognormal(0.0, 0.3, size=bought.size) * DAY
            ).astype(np.int64)
            day = (due - self.window_start) // DAY
            ok = day < cfg.days
            if not ok.any():
                break
            items, users, day, earliest = items[ok], users[ok], day[ok], due[ok]
            start = self.window_start + day * DAY + self._hours(users)
            start = np.maximum(start, earliest)
            n = users.size

            extra = rng.poisson(0.8, size=n)
            n_views = 1 + extra
            slot_session = np.repeat(np.arange(n), n_views)
            slot_pos = np.arange(slot_session.size) - np.repeat(
                np.cumsum(n_views) - n_views, n_views
            )
            slot_user = users[slot_session]
            is_first = slot_pos == 0
            slot_item = np.empty(slot_session.size, dtype=np.int64)
            slot_item[is_first] = items
            browse = np.flatnonzero(~is_first)
            slot_item[browse] = self._choose(
                slot_user[browse],
                cat.leaf[items][slot_session[browse]],
                start[slot_session[browse]],
            )
            cart, qty, buy = self._funnel(slot_session, slot_user, slot_item)
            # the item they came back for is usually carted and bought
            cart[is_first] = rng.random(n) < 0.9
            buy[is_first] = cart[is_first] & (rng.random(n) < 0.9)

            searched = rng.random(n) < 0.4
            click = rng.random(slot_session.size) < 0.35
            click |= is_first & searched[slot_session]
            query = np.full(n, None, dtype=object)
            s = np.flatnonzero(searched)
            query[s] = self._queries(items[s], brand_bias=0.25)
            batch = self._emit(
                users, start, query, slot_session, slot_pos, slot_item, click, cart, qty, buy
            )
            self.batches.append(batch)

    def ratings(self) -> None:
        """Some purchases are rated a few days later; better-matching items score higher."""
        rng, cat, t = self.rng, self.cat, self.tastes
        events = _Batch.concat(self.batches)
        bought = np.flatnonzero(events.etype == _PURCHASE)
        bought = bought[rng.random(bought.size) < self.cfg.rating_rate]
        users, items = events.user[bought], events.item[bought]
        taste = (
            t.brand_affinity[users, cat.brand[items]]
            + 2.0 * len(LEAVES) / 10.0 * t.leaf_preference[users, cat.leaf[items]]
            + 0.8 * self._price_fit(users, items)
        )
        score = (
            3.15 + 0.75 * cat.quality[items] + 0.55 * taste + 0.8 * rng.standard_normal(items.size)
        )
        value = np.clip(np.rint(score), 1, 5)
        delay = (rng.lognormal(np.log(4.0), 0.8, size=items.size) * DAY).astype(np.int64) + 3600
        n = bought.size
        self.batches.append(
            _Batch(
                session=np.full(n, -1),
                user=users,
                item=items,
                etype=np.full(n, _RATING),
                value=value,
                query=np.full(n, None, dtype=object),
                ts=events.ts[bought] + delay,
                key=np.zeros(n, dtype=np.int64),
            )
        )

    def build(self) -> DemoStore:
        """The canonical frames, with ids assigned in time order."""
        cfg, cat, t = self.cfg, self.cat, self.tastes
        ev = _Batch.concat(self.batches)
        keep = ev.ts < self.window_end
        ev = _Batch(*(getattr(ev, f)[keep] for f in _Batch.__dataclass_fields__))

        # sessions numbered by their first event
        first_ts = np.full(self.n_sessions, np.iinfo(np.int64).max)
        has = ev.session >= 0
        np.minimum.at(first_ts, ev.session[has], ev.ts[has])
        live = np.flatnonzero(first_ts < np.iinfo(np.int64).max)
        live = live[np.lexsort((live, first_ts[live]))]
        rank = np.full(self.n_sessions, -1)
        rank[live] = np.arange(live.size)
        sess_rank = np.where(has, rank[np.maximum(ev.session, 0)], -1)

        order = np.lexsort((ev.key, sess_rank, ev.ts))
        ev = _Batch(*(getattr(ev, f)[order] for f in _Batch.__dataclass_fields__))
        sess_rank = sess_rank[order]
        n = ev.ts.size

        s_width = max(7, len(str(live.size)))
        e_width = max(7, len(str(n)))
        sess_ids = np.array([f"S-{i + 1:0{s_width}d}" for i in range(live.size)] + [None], object)
        item_ids = cat.frame["item_id"].to_numpy(dtype=object)
        u_width = max(5, len(str(cfg.n_users)))
        user_ids = np.array([f"U-{i + 1:0{u_width}d}" for i in range(cfg.n_users)], object)
        events = pd.DataFrame(
            {
                "event_id": [f"E-{i + 1:0{e_width}d}" for i in range(n)],
                "user_id": user_ids[ev.user],
                "item_id": np.where(ev.item >= 0, item_ids[np.maximum(ev.item, 0)], None),
                "type": _TYPE_NAMES[ev.etype],
                "value": ev.value.astype(float),
                "query": ev.query,
                "session_id": sess_ids[sess_rank],  # -1 -> None
                "timestamp": ev.ts.astype("datetime64[s]"),
            }
        )

        # users: sign-up before their first event
        rng = self.rng
        first_seen = np.full(cfg.n_users, self.window_end)
        np.minimum.at(first_seen, ev.user, ev.ts)
        recent = rng.random(cfg.n_users) < 0.35
        lead = np.where(
            recent,
            rng.integers(120, 3 * DAY, size=cfg.n_users),
            rng.integers(3 * DAY, 730 * DAY, size=cfg.n_users),
        )
        created = first_seen - lead
        attrs = {
            "country": _categorical(rng, _COUNTRIES, cfg.n_users),
            "signup_channel": _categorical(rng, _CHANNELS, cfg.n_users),
            "device": _categorical(rng, _DEVICES, cfg.n_users),
            "age_band": _categorical(rng, _AGE_BANDS, cfg.n_users),
        }
        newsletter = rng.random(cfg.n_users) < 0.35
        users = pd.DataFrame(
            {
                "user_id": user_ids,
                "attributes": [
                    json.dumps(
                        {
                            "age_band": attrs["age_band"][i],
                            "country": attrs["country"][i],
                            "device": attrs["device"][i],
                            "newsletter": bool(newsletter[i]),
                            "signup_channel": attrs["signup_channel"][i],
                        },
                        sort_keys=True,
                    )
                    for i in range(cfg.n_users)
                ],
                "created_at": created.astype("datetime64[s]"),
            }
        )
        latent = {
            "top_categories": np.array(TOP_CATEGORIES, dtype=object),
            "leaves": np.array([lf.path for lf in LEAVES], dtype=object),
            "brands": np.array(cat.brand_names, dtype=object),
            "top_preference": t.top_preference,
            "leaf_preference": t.leaf_preference,
            "brand_affinity": t.brand_affinity,
            "favourite_brands": t.favourite_brands,
            "price_preference": t.price_preference,
            "activity": t.activity,
            "preferred_hour": t.preferred_hour,
            "item_leaf": cat.leaf,
            "item_brand": cat.brand,
            "item_popularity": cat.popularity,
            "item_quality": cat.quality,
        }
        return DemoStore(
            items=cat.frame,
            users=conform("users", users),
            events=conform("events", events),
            config=cfg,
            latent=latent,
        )


def _typo(text: str, r1: float, r2: float) -> str:
    """A plausible typing slip in one letter of `text`: swapped, dropped or doubled."""
    letters = [i for i, ch in enumerate(text) if ch.isalpha() and ch.islower()]
    if len(letters) < 4:
        return text
    i = letters[1 + int(r1 * (len(letters) - 2))]  # never the first letter
    kind = int(r2 * 3)
    if kind == 0 and i + 1 < len(text) and text[i + 1].isalpha() and text[i + 1].islower():
        return text[:i] + text[i + 1] + text[i] + text[i + 2 :]
    if kind == 1:
        return text[:i] + text[i + 1 :]
    return text[:i] + text[i] + text[i:]


def _soft_lower(text: str) -> str:
    """Lower-case words for use inside a sentence, keeping acronyms and proper words."""
    return " ".join(
        w if w in _PROPER_WORDS or w.isupper() or any(c.isupper() for c in w[1:]) else w.lower()
        for w in text.split(" ")
    )
