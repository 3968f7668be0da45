"""A small realistic items frame (the shape jointsid_utils.data.dataset produces) for the query tests."""

from __future__ import annotations

import pandas as pd

_NA = None

# title, year, genres, runtime_min, imdb_rating, mpaa, plot, tags
_MOVIES = [
    ("Toy Story", 1995, ["Animation", "Children's", "Comedy"], 81, 8.3, "G",
     "A cowboy doll is profoundly threatened and jealous when a new spaceman figure supplants him as top toy "
     "in a boy's room. Woody and Buzz Lightyear get lost at a gas station and must escape the house of Sid, "
     "a neighbour who tortures toys, before the family moves away.", []),
    ("GoldenEye", 1995, ["Action", "Adventure", "Thriller"], 130, 7.2, "PG-13",
     "James Bond teams up with a Russian programmer to stop a rogue agent from using a stolen satellite "
     "weapon, GoldenEye, to cause a global financial meltdown from a secret base in Cuba.", []),
    ("Four Rooms", 1995, ["Thriller"], 98, 6.7, _NA, _NA, []),
    ("Get Shorty", 1995, ["Action", "Comedy", "Drama"], 105, 6.9, "R", _NA, []),
    ("Copycat", 1995, ["Crime", "Drama", "Thriller"], 123, 6.6, "R",
     "An agoraphobic psychologist and a female detective must work together to take down a serial killer who "
     "copies famous murderers from the past, taunting the psychologist over the internet.", []),
    ("Twelve Monkeys", 1995, ["Drama", "Sci-Fi"], 129, 8.0, "R",
     "In a future world devastated by disease, a convict is sent back in time to gather information about "
     "the man-made virus that wiped out most of the human population, and ends up in a psychiatric hospital.",
     []),
    ("Babe", 1995, ["Children's", "Comedy", "Drama"], 91, 6.8, "G", _NA, []),
    ("Dead Man Walking", 1995, ["Drama"], 122, 7.5, _NA, _NA, []),
    ("The Usual Suspects", 1995, ["Crime", "Thriller"], 106, 8.5, "R",
     "A sole survivor tells of the twisty events leading up to a horrific gun battle on a boat, which began "
     "when five criminals met at a seemingly random police lineup and were hired by the mythic crime lord "
     "Keyser Soze to attack a drug smuggling ship in the harbour.", []),
    ("Heat", 1995, ["Action", "Crime", "Thriller"], 170, 8.3, "R",
     "A group of high-end professional thieves start to feel the heat from the LAPD when they unknowingly "
     "leave a clue at their latest heist; a veteran detective hunts the crew's leader across Los Angeles.",
     []),
    ("Star Wars", 1977, ["Action", "Adventure", "Romance", "Sci-Fi", "War"], 121, 8.8, "PG",
     "Luke Skywalker joins forces with a Jedi knight, a cocky pilot, a wookiee and two droids to save the "
     "galaxy from the Empire's world-destroying battle station while also trying to rescue Princess Leia.",
     []),
    ("Casablanca", 1942, ["Drama", "Romance", "War"], 102, 8.5, _NA,
     "A cynical expatriate nightclub owner in Casablanca struggles to decide whether or not to help his "
     "former lover and her fugitive husband escape the Nazis in French Morocco.", []),
    ("Fargo", 1996, ["Crime", "Drama", "Thriller"], 98, 8.1, "R",
     "A car salesman in debt hires two criminals to kidnap his wife, but the kidnapping spirals into "
     "murders that a pregnant police chief investigates in snowy Minnesota.", []),
    ("The Maltese Falcon", 1941, ["Film-Noir", "Mystery"], 100, 8.0, _NA, _NA, []),
    ("Sabrina", 1954, ["Comedy", "Romance"], _NA, _NA, _NA, _NA, []),
    ("The City of Lost Children (Cité des enfants perdus, La)", 1995, ["Adventure", "Sci-Fi"], 112, 7.5, _NA,
     _NA, []),
    ("Nosferatu (Nosferatu, eine Symphonie des Grauens)", 1922, ["Horror"], 94, 7.8, _NA, _NA, []),
    ("Sleepless in Seattle", 1993, ["Comedy", "Romance"], 105, 6.8, "PG", _NA, []),
    ("Aladdin", 1992, ["Animation", "Children's", "Comedy", "Musical"], 90, 8.0, "G", _NA, []),
    ("Unforgiven", 1992, ["Western"], 130, 8.2, "R", _NA, ["revenge", "gunslinger", "dark western"]),
    ("Hoop Dreams", 1994, ["Documentary"], 170, 8.3, _NA, _NA, []),
    ("Blade Runner", 1982, ["Film-Noir", "Sci-Fi"], 117, 8.1, "R", _NA, ["cyberpunk", "dystopia", "replicants"]),
    ("The Shawshank Redemption", 1994, ["Drama"], 142, 9.3, "R", _NA, ["prison", "hope", "friendship"]),
    ("Amityville 1992: It's About Time", 1992, ["Horror"], _NA, _NA, _NA, _NA, []),
    ("unknown", _NA, ["unknown"], _NA, _NA, _NA, _NA, []),
    ("Ran", 1985, ["Drama", "War"], 162, 8.2, "R", _NA, []),
]


def make_items() -> pd.DataFrame:
    rows = []
    for i, (title, year, genres, runtime, imdb, mpaa, plot, tags) in enumerate(_MOVIES):
        text = f"{title}. {', '.join(genres)}." + (f" {plot}" if plot else "")
        rows.append(dict(item_id=i, source_id=str(i + 1), title=title, year=year, genres=genres,
                         runtime_min=runtime, imdb_rating=imdb, mpaa=mpaa, plot=plot, tags=tags, text=text))
    frame = pd.DataFrame(rows)
    frame["item_id"] = frame["item_id"].astype("int64")
    frame["year"] = frame["year"].astype("Int64")
    frame["runtime_min"] = frame["runtime_min"].astype("Int64")
    frame["imdb_rating"] = frame["imdb_rating"].astype("float64")
    return frame

