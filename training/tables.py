"""Made-up tables turned into reader pairs: a question beside a table row, read as served.

SQuAD has no tables, so the readers never saw a row in training, and at serve time they take a
labelled row ("Cedar — Floor 5, Seats 20", `retrieval.candidates.table_rows`) for an answer more
readily than a sentence: a room no table lists, or a column no table has, still gets the nearest
row at 0.9 and more (docs/QUALITY.md, "Tables"). These pairs teach what a row answers.

Each table is drawn from a domain below: a title, the sentence before the table, a first column
of invented names and some of the domain's other columns, with invented values. It is written as
Markdown and read back through `table_rows`, so a row reaches the reader exactly as it would from
a document. Questions are asked the ways people ask about a cell:

- a row's cell ("How many seats does Cedar have?"): positive on that row, the other rows negative;
- a row found by a cell ("Which room is on floor 5?"): positive on the row holding the value;
- near misses, grouped as `<question>/swapped` so the ranking loss puts them below the answer they
  were made from on the same row: the same row asked for a detail next to a column's that no
  column gives ("the weekly rate" beside "Nightly rate", an email beside a phone number), or for
  a column the table does not have; a row the table does not have (another invented name, or a
  plain thing such as "the penthouse"); or a value no row holds.

Every name and value is invented here; nothing is copied from a dataset.
"""

from __future__ import annotations

import random
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from ingest.sentences import sentence_spans
from retrieval.candidates import table_rows, with_short_items
from retrieval.reader import reader_context
from training.squad import Pair

Values = Callable[[random.Random], str]


@dataclass(frozen=True, slots=True)
class Column:
    """A column a domain's tables may have: its header, how its cells are drawn, and how people ask for one."""

    label: str
    values: Values
    asks: tuple[str, ...]  # "{row}" is the row's name: the question a cell of this column answers
    finds: tuple[str, ...] = ()  # "{value}" is a cell: the question the cell's row answers
    near: tuple[str, ...] = ()  # "{row}" is the row's name: a detail next to this column's that no column gives


@dataclass(frozen=True, slots=True)
class Domain:
    """A kind of table: its titles, the sentence before it, its first column and its other columns."""

    titles: tuple[str, ...]
    intros: tuple[str, ...]
    key: str  # the first column's header
    names: Values  # the first column's cells
    absent: tuple[str, ...]  # plain things a question may ask about that such a table does not list
    columns: tuple[Column, ...]


_SYLLABLES = ("ka", "lo", "ven", "dar", "mi", "tor", "sel", "ra", "quin", "bel", "os", "tan", "ri", "mar",
              "cor", "el", "vi", "han", "pol", "ne", "sto", "gra", "lu", "fen", "ar", "bro", "zi", "det")
_GIVEN = ("Ana", "Tomas", "Priya", "Jonah", "Mei", "Oskar", "Leila", "Grant", "Nadia", "Ravi", "Ines", "Felix",
          "Yuki", "Carmen", "Dmitri", "Hana", "Marcus", "Sofia", "Emeka", "Lena", "Paolo", "Ruth", "Amir", "Clara")
_FAMILY = ("Okafor", "Lindgren", "Castillo", "Tanaka", "Moreau", "Novak", "Haddad", "Brennan", "Iyer", "Kowalski",
           "Santos", "Weber", "Osei", "Larsen", "Duarte", "Petrov", "Quinn", "Abbasi", "Fischer", "Mendez")
_MONTHS = ("January", "February", "March", "April", "May", "June", "July", "August", "September", "October",
           "November", "December")
_CITIES = ("Lisbon", "Oslo", "Denver", "Nairobi", "Osaka", "Lyon", "Porto", "Tampere", "Leeds", "Graz", "Quito",
           "Perth", "Austin", "Ghent", "Malmo", "Cork", "Bergen", "Tucson", "Split", "Bilbao")


def word(rng: random.Random, syllables: int = 0) -> str:
    """An invented name of two or three syllables (or `syllables`), capitalised ("Vipol")."""
    return "".join(rng.choice(_SYLLABLES) for _ in range(syllables or rng.randint(2, 3))).capitalize()


def person(rng: random.Random) -> str:
    """An invented person's name."""
    return f"{rng.choice(_GIVEN)} {rng.choice(_FAMILY)}"


def code(rng: random.Random) -> str:
    """A part or vehicle code ("ZA-106")."""
    return f"{rng.choice('ABCDEFGHKLMNPRSTVXZ')}{rng.choice('ABCDEFGHKLMNPRSTVXZ')}-{rng.randint(10, 990)}"


def number(low: int, high: int, unit: str = "", step: int = 1) -> Values:
    """Whole numbers from `low` to `high`, with thousands marked and a unit after."""
    return lambda rng: f"{rng.randrange(low, high + 1, step):,}{unit}"


def money(low: int, high: int, symbol: str = "$", step: int = 1) -> Values:
    """Whole amounts from `low` to `high` after a currency symbol."""
    return lambda rng: f"{symbol}{rng.randrange(low, high + 1, step):,}"


def decimal(low: float, high: float, unit: str = "", places: int = 1) -> Values:
    """Numbers with `places` decimals from `low` to `high`, a unit after."""
    return lambda rng: f"{rng.uniform(low, high):.{places}f}{unit}"


def one_of(*choices: str) -> Values:
    """One of the choices."""
    return lambda rng: rng.choice(choices)


def joined(*parts: Values) -> Values:
    """A name of several drawn parts ("The Vipol Tapestry")."""
    return lambda rng: " ".join(part(rng) for part in parts)


def date(rng: random.Random) -> str:
    """A date, written one of three ways."""
    month = rng.choice(_MONTHS)
    return rng.choice((f"{rng.randint(1, 28)} {month} {rng.randint(2019, 2027)}",
                       f"{month} {rng.randint(1, 28)}, {rng.randint(2019, 2027)}",
                       f"{rng.randint(2019, 2027)}-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}"))


def clock(rng: random.Random) -> str:
    """A time of day, on the 24-hour or the 12-hour clock."""
    hour, minute = rng.randint(5, 22), rng.choice((0, 10, 15, 20, 30, 40, 45, 50))
    return rng.choice((f"{hour:02d}:{minute:02d}", f"{(hour - 1) % 12 + 1}:{minute:02d} {'am' if hour < 12 else 'pm'}"))


def years(rng: random.Random) -> str:
    """A year since 1950."""
    return str(rng.randint(1950, 2026))


DOMAINS: tuple[Domain, ...] = (
    Domain(
        ("Hotel rooms", "Guest rooms and suites", "Accommodation"), (
            "Each room type is listed below with its rate.", "The rooms we book for visitors are these.",
            "Guests can choose from the following rooms."),
        "Room", lambda rng: f"{word(rng)} {rng.choice(('Suite', 'Room', 'Studio', 'Loft'))}",
        ("penthouse", "bridal suite", "family room", "honeymoon room"), (
            Column("Nightly rate", money(60, 640, step=5), ("How much is a night in the {row}?",
                   "What does the {row} cost per night?", "What is the nightly rate for the {row}?"),
                   ("Which room costs {value} a night?",),
                   near=("How much is breakfast at the {row}?", "What is the weekly rate for the {row}?")),
            Column("Beds", one_of("1 double", "2 single", "1 king", "1 queen", "2 double", "1 single"),
                   ("What beds does the {row} have?", "How is the {row} furnished for sleeping?"),
                   near=("Can I get a cot in the {row}?",)),
            Column("Guests", number(1, 6), ("How many guests can stay in the {row}?",
                   "How many people does the {row} sleep?"), near=("How many children can stay free in the {row}?",)),
            Column("View", one_of("sea", "garden", "courtyard", "city", "mountain", "street"),
                   ("What view does the {row} have?", "What can you see from the {row}?"),
                   ("Which room has a {value} view?",), near=("Does the {row} have a balcony?",)),
            Column("Floor", number(1, 14), ("Which floor is the {row} on?", "On what floor is the {row}?"),
                   near=("Which floor is the breakfast room on?", "Is there a lift to the {row}?")),
            Column("Size", number(14, 95, " m²"), ("How big is the {row}?", "What is the floor area of the {row}?"),
                   near=("How high is the ceiling in the {row}?",)),
        )),
    Domain(
        ("Train timetable", "Weekday departures", "Northern line services"), (
            "Departures from the central station are listed below.", "These trains run Monday to Friday.",
            "The timetable below applies from the spring change."),
        "Train", lambda rng: f"{rng.choice(('IC', 'RE', 'EX', 'R'))} {rng.randint(100, 9900)}",
        ("the night train", "the first train of the day", "the airport shuttle", "the weekend service"), (
            Column("Departs", clock, ("When does the {row} leave?", "What time does the {row} depart?"),
                   ("Which train departs at {value}?",),
                   near=("When does the {row} arrive?", "What time does the {row} get back?")),
            Column("Destination", one_of(*_CITIES), ("Where does the {row} go?", "What is the {row}'s destination?"),
                   ("Which train goes to {value}?",), near=("Where does the {row} start from?",)),
            Column("Platform", number(1, 18), ("Which platform does the {row} leave from?",
                   "What platform is the {row} on?"), near=("Which platform does the {row} arrive at?",)),
            Column("Journey time", lambda rng: f"{rng.randint(0, 5)} h {rng.randint(0, 59):02d} min",
                   ("How long does the {row} take?", "What is the journey time of the {row}?"),
                   near=("How late was the {row} yesterday?",)),
            Column("Stops", number(0, 24), ("How many stops does the {row} make?",
                   "How many times does the {row} stop on the way?"),
                   near=("How many carriages does the {row} have?",)),
        )),
    Domain(
        ("Course catalogue", "Evening courses", "Autumn term modules"), (
            "The courses offered this term are these.", "Enrolment is open for the modules below.",
            "Each module is taught once a week."),
        "Course", joined(one_of("Intro to", "Advanced", "Applied", "Foundations of"),
                          one_of("Ceramics", "Statistics", "Welding", "Italian", "Bookkeeping", "Botany", "Drawing",
                                 "Acoustics", "Logic", "Carpentry", "Cartography", "Poetry")),
        ("the photography course", "a beginners' Spanish class", "the weekend workshop"), (
            Column("Tutor", person, ("Who teaches {row}?", "Who is the tutor for {row}?"),
                   ("Which course does {value} teach?",),
                   near=("What is the email address of the {row} tutor?", "Who marks the {row} exams?")),
            Column("Credits", number(1, 30), ("How many credits is {row} worth?", "How many credits does {row} give?"),
                   near=("How many hours a week is {row}?",)),
            Column("Day", one_of("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday"),
                   ("Which day is {row} taught?", "On what day does {row} meet?"),
                   near=("What time of day is {row} taught?",)),
            Column("Fee", money(40, 900, "£", 5), ("How much does {row} cost?", "What is the fee for {row}?"),
                   near=("How much is the exam fee for {row}?", "Is there a discount on {row}?")),
            Column("Room", lambda rng: f"{rng.choice('ABCDE')}{rng.randint(100, 420)}",
                   ("Where is {row} held?", "Which room is {row} in?"), near=("Which building is {row} in?",)),
            Column("Places", number(6, 40), ("How many places are there on {row}?",
                   "How many students can take {row}?"), near=("How many places are left on {row}?",)),
        )),
    Domain(
        ("Vehicle fleet", "Company cars", "Pool vehicles"), (
            "Staff may book the vehicles below.", "The fleet currently has these vehicles.",
            "Each vehicle is kept at one depot."),
        "Vehicle", lambda rng: f"{rng.choice(('Van', 'Car', 'Truck', 'Minibus'))} {rng.randint(1, 60)}",
        ("the electric scooter", "the director's car", "a rental car", "the tractor"), (
            Column("Model", lambda rng: f"{word(rng)} {rng.choice(('Cargo', 'Estate', 'XL', 'Sport', 'City', 'Pro'))}",
                   ("What model is {row}?", "What kind of vehicle is {row}?"), near=("What colour is {row}?",)),
            Column("Registration", lambda rng: f"{code(rng)}{rng.choice('ABCDEFGH')}",
                   ("What is the registration of {row}?", "What's {row}'s number plate?"),
                   ("Which vehicle has the registration {value}?",), near=("Who is {row} registered to?",)),
            Column("Seats", number(2, 16), ("How many seats does {row} have?", "How many people can ride in {row}?"),
                   near=("How much can {row} carry?",)),
            Column("Fuel", one_of("diesel", "petrol", "electric", "hybrid", "LPG"),
                   ("What fuel does {row} use?", "Is {row} diesel or electric?"),
                   near=("How far can {row} go on a full tank?", "What is the fuel consumption of {row}?")),
            Column("Depot", one_of(*_CITIES), ("Where is {row} kept?", "Which depot is {row} based at?"),
                   near=("Who looks after {row} at the depot?",)),
            Column("Next service", date, ("When is {row} next serviced?", "When is {row} due for its service?"),
                   near=("When was {row} last serviced?",)),
            Column("Mileage", number(1000, 240000, " km", 250), ("How far has {row} been driven?",
                   "What is the mileage on {row}?"), near=("What was {row}'s mileage when it was bought?",)),
        )),
    Domain(
        ("Planets of the Veyra system", "Known worlds", "Survey results"), (
            "The survey catalogued the following bodies.", "Figures are from the third expedition.",
            "Each world below was visited at least once."),
        "World", lambda rng: word(rng),
        ("the outermost moon", "the asteroid belt", "the home star", "the comet"), (
            Column("Moons", number(0, 40), ("How many moons does {row} have?", "How many moons orbit {row}?"),
                   near=("How many rings does {row} have?", "What is the largest moon of {row}?")),
            Column("Day length", decimal(5, 90, " hours"), ("How long is a day on {row}?",
                   "How long does {row} take to turn once?"), near=("How long is a year on {row}?",)),
            Column("Mean temperature", number(-220, 460, " °C"), ("How hot is {row}?",
                   "What is the average temperature on {row}?"), near=("What is the coldest temperature on {row}?",)),
            Column("Discovered", years, ("When was {row} discovered?", "In what year was {row} found?"),
                   ("Which world was discovered in {value}?",), near=("Who discovered {row}?",)),
            Column("Atmosphere", one_of("nitrogen", "carbon dioxide", "methane", "none", "hydrogen", "argon"),
                   ("What is {row}'s atmosphere made of?", "What gas makes up the air on {row}?"),
                   near=("How thick is the atmosphere of {row}?",)),
            Column("Diameter", number(900, 140000, " km", 100), ("How big is {row}?", "What is the diameter of {row}?"),
                   near=("How heavy is {row}?", "How far is {row} from its star?")),
        )),
    Domain(
        ("Mobile plans", "Price list", "Phone contracts"), (
            "Our current plans are compared below.", "Prices include tax.", "All plans can be cancelled monthly."),
        "Plan", lambda rng: f"{word(rng)} {rng.choice(('Lite', 'Plus', 'Max', 'Go', 'Unlimited', 'Basic'))}",
        ("the student plan", "a prepaid card", "the family bundle", "the business plan"), (
            Column("Monthly price", money(5, 90, "€"), ("How much is {row} a month?", "What does {row} cost?"),
                   ("Which plan costs {value} a month?",), near=("What is the connection fee for {row}?",)),
            Column("Data", one_of("2 GB", "5 GB", "10 GB", "25 GB", "50 GB", "100 GB", "unlimited"),
                   ("How much data comes with {row}?", "How much data does {row} include?"),
                   near=("How fast is the data on {row}?",)),
            Column("Minutes", one_of("100", "300", "500", "1,000", "unlimited"), ("How many minutes does {row} give?",
                   "How many call minutes are in {row}?"), near=("How many texts does {row} include?",)),
            Column("Contract", one_of("none", "12 months", "24 months", "6 months"),
                   ("How long is the contract for {row}?", "Does {row} tie you in, and for how long?"),
                   near=("What is the cancellation fee for {row}?",)),
            Column("Roaming", one_of("EU only", "worldwide", "not included", "40 countries"),
                   ("Where does {row} work abroad?", "Is roaming included in {row}?"),
                   near=("How much does roaming cost per day on {row}?",)),
        )),
    Domain(
        ("Library holdings", "New acquisitions", "Reading list"), (
            "The titles below were added this year.", "Members can borrow the books listed here.",
            "Each book has one shelf mark."),
        "Title", joined(lambda rng: "The", word,
                         one_of("Letters", "Garden", "Harbour", "Winter", "Archive", "Road", "Machine")),
        ("the atlas", "a cookbook", "the encyclopedia", "the latest thriller"), (
            Column("Author", person, ("Who wrote {row}?", "Who is the author of {row}?"),
                   ("Which book did {value} write?",), near=("Who translated {row}?", "Who illustrated {row}?")),
            Column("Published", years, ("When was {row} published?", "What year did {row} come out?"),
                   near=("Who published {row}?",)),
            Column("Pages", number(80, 1200), ("How long is {row}?", "How many pages does {row} have?"),
                   near=("How many chapters does {row} have?",)),
            Column("Shelf", lambda rng: f"{rng.choice('ABCDEFGHJK')}{rng.randint(1, 40)}.{rng.randint(1, 9)}",
                   ("Where is {row} shelved?", "What is the shelf mark for {row}?"),
                   near=("How many copies of {row} do we have?",)),
            Column("Loan period", one_of("7 days", "14 days", "21 days", "28 days", "reference only"),
                   ("How long can I borrow {row} for?", "What is the loan period of {row}?"),
                   near=("What is the late fee for {row}?",)),
            Column("Language", one_of("English", "French", "Portuguese", "Finnish", "Spanish", "German"),
                   ("What language is {row} in?", "Is {row} in English?"),
                   near=("What language was {row} first written in?",)),
        )),
    Domain(
        ("League table", "Season standings", "Club results"), (
            "The standings after the last round are below.", "Points are three for a win and one for a draw.",
            "Clubs are listed by position."),
        "Club", joined(one_of(*_CITIES), one_of("Rovers", "United", "Athletic", "Wanderers", "City", "Harriers")),
        ("the national team", "the reserve side", "the women's team", "last season's champions"), (
            Column("Played", number(10, 38), ("How many games have {row} played?", "How many matches did {row} play?"),
                   near=("How many games do {row} have left?",)),
            Column("Won", number(0, 30), ("How many games have {row} won?", "How many wins do {row} have?"),
                   near=("How many games have {row} lost?", "How many draws do {row} have?")),
            Column("Points", number(0, 95), ("How many points do {row} have?", "What is {row}'s points total?"),
                   ("Which club has {value} points?",), near=("How many goals have {row} scored?",)),
            Column("Manager", person, ("Who manages {row}?", "Who is the coach of {row}?"),
                   ("Which club does {value} manage?",), near=("Who is the captain of {row}?", "Who owns {row}?")),
            Column("Ground", lambda rng: f"{word(rng)} {rng.choice(('Park', 'Road', 'Stadium', 'Lane', 'Field'))}",
                   ("Where do {row} play?", "What is {row}'s home ground?"),
                   near=("How many people does {row}'s ground hold?",)),
            Column("Founded", years, ("When were {row} founded?", "How old is {row}?"), near=("Who founded {row}?",)),
        )),
    Domain(
        ("Recipe nutrition", "Menu", "Canteen dishes"), (
            "Values are per serving.", "The canteen serves these dishes this month.", "Allergens are marked."),
        "Dish", joined(word, one_of("stew", "salad", "pie", "curry", "soup", "risotto", "tart", "bake")),
        ("the dessert", "the soup of the day", "a vegan burger", "the chef's special"), (
            Column("Calories", number(120, 1100, " kcal", 10), ("How many calories are in the {row}?",
                   "How much energy does the {row} have?"), near=("How much fat is in the {row}?",)),
            Column("Protein", number(2, 60, " g"), ("How much protein is in the {row}?",
                   "How many grams of protein does the {row} have?"),
                   near=("How much sugar is in the {row}?", "How much fibre does the {row} have?")),
            Column("Allergens", one_of("nuts", "gluten", "milk", "egg", "none", "sesame", "fish"),
                   ("What allergens does the {row} contain?", "Is the {row} safe for allergies?"),
                   near=("Is the {row} vegetarian?",)),
            Column("Price", money(3, 19, "£"), ("How much is the {row}?", "What does the {row} cost?"),
                   ("Which dish costs {value}?",), near=("How much is a large {row}?",)),
            Column("Cooking time", number(10, 180, " min", 5), ("How long does the {row} take to cook?",
                   "What is the cooking time for the {row}?"), near=("At what temperature is the {row} cooked?",)),
        )),
    Domain(
        ("Warehouse stock", "Inventory", "Spare parts"), (
            "Stock levels were counted on Friday.", "Reorder when a part falls below its minimum.",
            "The parts we keep are these."),
        "Part", joined(code, one_of("bearing", "valve", "filter", "bracket", "seal", "pump", "fuse", "hinge")),
        ("the spare tyres", "a replacement motor", "the cleaning supplies", "the toner"), (
            Column("In stock", number(0, 900), ("How many {row}s are in stock?", "How many of the {row} do we have?"),
                   near=("How many {row}s are on order?",)),
            Column("Bin", lambda rng: f"{rng.choice('ABCDEFG')}-{rng.randint(1, 30):02d}-{rng.randint(1, 6)}",
                   ("Where is the {row} stored?", "Which bin holds the {row}?"),
                   ("Which part is kept in bin {value}?",), near=("Which warehouse holds the {row}?",)),
            Column("Supplier", lambda rng: f"{word(rng)} {rng.choice(('Ltd', 'GmbH', 'Inc', 'Supply', 'Industrial'))}",
                   ("Who supplies the {row}?", "Where do we buy the {row} from?"),
                   near=("What is the phone number of the {row} supplier?", "Who makes the {row}?")),
            Column("Unit cost", money(1, 400), ("What does a {row} cost?", "How much is one {row}?"),
                   near=("What is the shipping cost for the {row}?",)),
            Column("Minimum", number(5, 100, "", 5), ("What is the reorder level for the {row}?",
                   "When should we reorder the {row}?"), near=("What is the maximum stock for the {row}?",)),
            Column("Weight", decimal(0.1, 25, " kg"), ("How heavy is the {row}?", "What does the {row} weigh?"),
                   near=("How big is the {row}?",)),
        )),
    Domain(
        ("Conference programme", "Talks on day one", "Schedule"), (
            "All talks are in the main building.", "The programme may change.", "Sessions on the first day are below."),
        "Talk", joined(one_of("Scaling", "Rethinking", "Measuring", "Teaching", "Securing", "Funding"),
                       one_of("small archives", "river data", "public transit", "old software", "field notes",
                              "city budgets", "seed banks")),
        ("the keynote", "the closing panel", "the lunch break", "the poster session"), (
            Column("Speaker", person, ("Who is giving {row}?", "Who presents {row}?"),
                   ("Which talk is {value} giving?",),
                   near=("Who chairs {row}?", "What is the email of the speaker of {row}?")),
            Column("Time", clock, ("When is {row}?", "What time does {row} start?"), near=("When does {row} end?",)),
            Column("Hall", one_of(*"ABCDEF"), ("Where is {row}?", "Which hall is {row} in?"),
                   near=("How many seats are in the hall for {row}?",)),
            Column("Length", number(15, 90, " min", 5), ("How long is {row}?", "How many minutes does {row} last?"),
                   near=("How long is the Q&A after {row}?",)),
            Column("Track", one_of("data", "policy", "design", "community", "research", "tools"),
                   ("Which track is {row} part of?", "What track is {row} in?"), near=("Is {row} recorded?",)),
        )),
    Domain(
        ("Bike-share stations", "Docking stations", "Where to find a bike"), (
            "Stations are open all day.", "The stations below are in the city centre.",
            "Docks are counted per station."),
        "Station", lambda rng: f"{word(rng)} {rng.choice(('Square', 'Bridge', 'Market', 'Gate', 'Quay', 'Hill'))}",
        ("the airport", "the university campus", "the main hospital", "the beach"), (
            Column("Docks", number(6, 60), ("How many docks does {row} have?", "How many bikes fit at {row}?"),
                   near=("How many bikes are at {row} now?",)),
            Column("E-bikes", one_of("yes", "no"),
                   ("Does {row} have e-bikes?", "Are electric bikes available at {row}?"),
                   near=("How much does an e-bike cost at {row}?",)),
            Column("Opened", years, ("When did {row} open?", "What year was {row} opened?"),
                   near=("When does {row} close at night?",)),
            Column("Nearest stop", lambda rng: f"{word(rng)} {rng.choice(('Road', 'Street', 'Avenue'))}",
                   ("What is the nearest stop to {row}?", "Which tram stop is closest to {row}?"),
                   near=("How far is {row} from the nearest stop?",)),
            Column("Zone", number(1, 6), ("Which zone is {row} in?", "What fare zone is {row}?"),
                   ("Which station is in zone {value}?",), near=("What is the fare from {row} to the centre?",)),
        )),
    Domain(
        ("Paint colours", "Colour chart", "Finishes"), (
            "Every colour comes in three sizes.", "Our most popular colours are listed.", "Dry times are at 20 °C."),
        "Colour", lambda rng: f"{word(rng)} {rng.choice(('Blue', 'Grey', 'Green', 'White', 'Ochre', 'Rose', 'Sand'))}",
        ("the primer", "a gloss varnish", "the ceiling white", "a wood stain"), (
            Column("Code", lambda rng: f"{rng.randint(100, 999)}-{rng.choice('ABCDEFGH')}",
                   ("What is the colour code of {row}?", "What's the code for {row}?"),
                   ("Which colour has the code {value}?",), near=("What is the RGB value of {row}?",)),
            Column("Finish", one_of("matt", "eggshell", "satin", "gloss", "silk"),
                   ("What finish does {row} have?", "Is {row} matt or gloss?"), near=("Is {row} washable?",)),
            Column("Tin price", money(12, 80, "£"), ("How much is a tin of {row}?", "What does {row} cost?"),
                   near=("How much is a sample pot of {row}?", "How big is a tin of {row}?")),
            Column("Coverage", number(6, 18, " m² per litre"), ("How far does {row} go?",
                   "What area does a litre of {row} cover?"), near=("How many coats of {row} are needed?",)),
            Column("Dry time", number(1, 24, " h"), ("How long does {row} take to dry?", "When is {row} dry?"),
                   near=("When can {row} be painted over?",)),
        )),
    Domain(
        ("Museum exhibits", "Gallery guide", "On display"), (
            "The objects below are on the first floor.", "Photography is allowed unless marked.",
            "Each exhibit has a case number."),
        "Exhibit", joined(lambda rng: "The", word,
                           one_of("Vase", "Map", "Helmet", "Clock", "Tapestry", "Coin", "Lamp", "Globe")),
        ("the gift shop", "the dinosaur skeleton", "a famous painting", "the new wing"), (
            Column("Made", lambda rng: f"{rng.choice(('c.', 'about', ''))} {rng.randint(800, 1950)}".strip(),
                   ("When was {row} made?", "How old is {row}?"), near=("When was {row} bought by the museum?",)),
            Column("Origin", one_of(*_CITIES), ("Where does {row} come from?", "Where was {row} made?"),
                   near=("Who made {row}?",)),
            Column("Case", number(1, 120), ("Which case is {row} in?", "Where can I see {row}?"),
                   ("Which exhibit is in case {value}?",), near=("Which room is {row} in?",)),
            Column("Material", one_of("bronze", "silver", "oak", "porcelain", "wool", "glass", "brass", "clay"),
                   ("What is {row} made of?", "What material is {row}?"), near=("How heavy is {row}?",)),
            Column("Donor", person, ("Who donated {row}?", "Who gave {row} to the museum?"),
                   near=("What is {row} insured for?", "When was {row} donated?")),
        )),
    Domain(
        ("Garden plots", "Allotments", "Plot holders"), (
            "Plots are let for a year at a time.", "The allotment site has the plots below.",
            "Water is shared between neighbouring plots."),
        "Plot", lambda rng: f"Plot {rng.randint(1, 99)}{rng.choice(('', 'a', 'b'))}",
        ("the orchard", "the greenhouse", "the compost area", "the tool shed"), (
            Column("Holder", person, ("Who has {row}?", "Who rents {row}?"), ("Which plot does {value} have?",),
                   near=("What is the phone number of the holder of {row}?",)),
            Column("Area", number(20, 250, " m²", 5), ("How big is {row}?", "What is the area of {row}?"),
                   near=("What soil does {row} have?",)),
            Column("Rent", money(15, 120, "£"), ("How much is the rent on {row}?", "What does {row} cost a year?"),
                   near=("What is the deposit for {row}?",)),
            Column("Since", years, ("Since when has {row} been let?", "When did the holder of {row} start?"),
                   near=("When does the lease on {row} end?",)),
            Column("Shed", one_of("yes", "no"), ("Does {row} have a shed?", "Is there a shed on {row}?"),
                   near=("Does {row} have a water tap?",)),
        )),
)


def _table(rng: random.Random, domain: Domain) -> tuple[list[Column], list[list[str]], list[Column]]:
    """Some of the domain's columns (in its order), rows of invented cells, and the columns left out."""
    count = rng.randint(2, min(5, len(domain.columns) - 1))
    chosen = set(rng.sample(range(len(domain.columns)), count))
    columns = [c for i, c in enumerate(domain.columns) if i in chosen]
    missing = [c for i, c in enumerate(domain.columns) if i not in chosen]
    names: list[str] = []
    while len(names) < rng.randint(4, 12):
        name = domain.names(rng)
        if name not in names:
            names.append(name)
    rows = [[name, *(column.values(rng) for column in columns)] for name in names]
    return columns, rows, missing


def _markdown(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return "\n".join(lines + ["| " + " | ".join(row) + " |" for row in rows])


def served_rows(intro: str, header: Sequence[str], rows: Sequence[Sequence[str]]) -> tuple[list[str], str]:
    """Each row as the readers read it and the sentence before the table, found as serving finds them:
    the table written in Markdown under its intro and read back by `table_rows`."""
    text = f"{intro}\n\n{_markdown(header, rows)}\n"
    spans = with_short_items(text, sentence_spans(text, 0, len(text)))
    found = table_rows(text, spans, starts_document=True)
    read = [found[index] for index in sorted(found)]
    if len(read) != len(rows):
        raise ValueError(f"a made-up table read back as {len(read)} rows, not {len(rows)}: {text!r}")
    return [row.labelled for row in read], read[0].before


def _unique(rows: Sequence[Sequence[str]], column: int, row: int) -> bool:
    return sum(r[column] == rows[row][column] for r in rows) == 1


def table_questions(rng: random.Random, table: int, *, questions: int = 3, negatives: int = 2,
                    miss_share: float = 0.7) -> list[Pair]:
    """Pairs from one made-up table (`table` numbers its questions' groups): `questions` questions,
    each against its answering row and `negatives` other rows, and, for `miss_share` of them, a near
    miss made from it, against the same row."""
    domain = rng.choice(DOMAINS)
    columns, rows, missing = _table(rng, domain)
    title, intro = rng.choice(domain.titles), rng.choice(domain.intros)
    labelled, before = served_rows(intro, [domain.key, *(c.label for c in columns)], rows)
    context = [reader_context(text, title=title, previous=before) for text in labelled]
    pairs: list[Pair] = []
    for q in range(questions):
        group = f"table{table}-{q}"
        at, which = rng.randrange(len(rows)), rng.randrange(len(columns))
        column = columns[which]
        if column.finds and _unique(rows, which + 1, at) and rng.random() < 0.3:
            template = rng.choice(column.finds)
            question = template.format(value=rows[at][which + 1])
            held = {row[which + 1] for row in rows}
            other = next((v for v in (column.values(rng) for _ in range(20)) if v not in held), None)
            miss = template.format(value=other) if other else None
        else:
            question = rng.choice(column.asks).format(row=rows[at][0])
            miss = _missed(rng, domain, rows, at, column, missing)
        others = rng.sample([i for i in range(len(rows)) if i != at], min(negatives, len(rows) - 1))
        pairs.append(Pair(question, context[at], 1.0, group))
        pairs += [Pair(question, context[i], 0.0, group) for i in others]
        if miss and rng.random() < miss_share:
            pairs.append(Pair(miss, context[at], 0.0, f"{group}/swapped"))
    return pairs


def _missed(rng: random.Random, domain: Domain, rows: Sequence[Sequence[str]], at: int, column: Column,
            missing: Sequence[Column]) -> str | None:
    """A question like `column`'s about row `at` that no row answers: a detail next to the column's
    that no column gives ("the weekly rate" beside "Nightly rate"), a column the table lacks, or
    the same column asked of a row it lacks (an invented name, or a plain thing: "the penthouse")."""
    kind = rng.random()
    if kind < 0.4:
        return rng.choice(column.near).format(row=rows[at][0])
    if kind < 0.65 and missing:
        return rng.choice(rng.choice(missing).asks).format(row=rows[at][0])
    template = rng.choice(column.asks)
    if rng.random() < 0.5:
        thing = re.sub(r"^(?:the|an?) ", "", rng.choice(domain.absent))
        return template.replace("the {row}", "{row}").format(row=f"the {thing}")
    other = domain.names(rng)
    return None if any(row[0] == other for row in rows) else template.format(row=other)


def table_pairs(tables: int, rng: random.Random) -> list[Pair]:
    """Pairs from `tables` made-up tables, each from a domain drawn by `rng`."""
    return [pair for table in range(tables) for pair in table_questions(rng, table)]
