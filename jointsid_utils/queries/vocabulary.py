"""The words the template generator writes with: stopwords, genre names, moods, and the templates per kind.

Slots in braces are filled by ``item_meta.ItemMeta``: ``{g}``/``{genre}`` a genre phrase, ``{era}``,
``{era_long}``, ``{decade}``, ``{year}``, ``{year_phrase}`` the release period, ``{article}`` "a"
(turned into "an" before a vowel), and one kind-specific slot per family (``{w}`` title words,
``{t}`` a misspelled title, ``{m}``/``{c}`` mood and occasion, ``{rt}`` runtime, ``{rp}`` rating,
``{cp}`` certificate, ``{a}``/``{b}``/``{c}`` plot words or tags).
"""

from __future__ import annotations

STOPWORDS = frozenset("""
a about above after again against all also am an and any are as at be because been before being
below between both but by can could did do does doing down during each few for from further had has
have having he her here hers herself him himself his how i if in into is it its itself just me more
most my myself no nor not now of off on once only or other our ours out over own same she should so
some such than that the their theirs them themselves then there these they this those through to too
under until up very was we were what when where which while who whom why will with would you your
yours yourself one two three four five first second new later after before however although though
into onto upon film movie story tells become becomes became begins begin takes take gets get goes go
back eventually finally soon meanwhile another around away still even well many much being made make
makes named called finds find found tries try trying decides decide leaves leave left tell told way
years year time day days night also along while whose since must might shall may several three
home life world people man woman men women young old last next meet meets meeting help helps kill
kills killed killing room town city house friend friends family father mother son daughter wife
husband brother sister boy girl group end ends order part place point upon within without
start starts started feel feels latest leading lead leads work works working true together whether
""".split())

GENRE_WORDS: dict[str, tuple[str, ...]] = {  # MovieLens genre -> ways people say it
    "Action": ("action",), "Adventure": ("adventure",), "Animation": ("animated", "animation", "cartoon"),
    "Children's": ("kids", "children's", "family"), "Comedy": ("comedy",), "Crime": ("crime",),
    "Documentary": ("documentary",), "Drama": ("drama",), "Fantasy": ("fantasy",),
    "Film-Noir": ("film noir", "noir"), "Horror": ("horror",), "Musical": ("musical",),
    "Mystery": ("mystery",), "Romance": ("romance",), "Sci-Fi": ("sci-fi", "science fiction", "scifi"),
    "Thriller": ("thriller",), "War": ("war",), "Western": ("western",),
}
# two genres read as modifier + head ("war drama", "romantic comedy"): later in this list = head noun
GENRE_HEAD_ORDER = ("Animation", "Children's", "Sci-Fi", "Action", "Crime", "War", "Romance", "Horror", "Fantasy",
                    "Adventure", "Mystery", "Film-Noir", "Western", "Musical", "Documentary", "Comedy", "Thriller",
                    "Drama")
MOODS: dict[str, tuple[str, ...]] = {  # genre -> what a vague viewer asks for (noun phrases)
    "Action": ("something full of explosions and car chases", "a movie with lots of action",
               "something to get the adrenaline going", "a film with big fight scenes"),
    "Adventure": ("a big adventure", "a movie about a journey somewhere exotic", "something with treasure and danger"),
    "Animation": ("something animated", "a cartoon", "a film with great animation"),
    "Children's": ("something the kids will like", "a movie for the whole family", "something safe for young children"),
    "Comedy": ("something light and funny", "a movie to make me laugh", "something silly and fun",
               "a feel-good funny film"),
    "Crime": ("a movie about gangsters", "something about criminals and cops", "a gritty crime story"),
    "Documentary": ("something about real events", "a real-life documentary", "a film that's true and informative"),
    "Drama": ("something moving and emotional", "a film that will make me cry", "a serious character-driven film"),
    "Fantasy": ("something with magic", "a movie set in another world", "a fairy tale"),
    "Film-Noir": ("something dark and moody in black and white", "a movie with a femme fatale",
                  "old-school noir"),
    "Horror": ("something scary", "a movie to keep me up at night", "something creepy and gory",
               "a truly terrifying film"),
    "Musical": ("something with singing and dancing", "a movie full of songs", "a big musical"),
    "Mystery": ("a puzzling mystery", "a movie where you guess the killer", "something full of clues and twists"),
    "Romance": ("something romantic", "a movie for date night", "a love story", "something sweet and romantic"),
    "Sci-Fi": ("something mind-bending", "a movie about space and aliens", "something futuristic",
               "a film with robots or time travel"),
    "Thriller": ("something tense", "a movie that keeps me on the edge of my seat", "something suspenseful",
                 "a nail-biting film"),
    "War": ("a movie about soldiers at war", "a war story", "something set on a battlefield"),
    "Western": ("a movie with cowboys", "something set in the wild west", "a film with gunslingers and outlaws"),
}
CONTEXTS = ("", "", "for a rainy afternoon", "for tonight", "for movie night", "to watch with my partner",
            "for a lazy sunday", "on a friday night", "to watch alone", "with friends")

PARTIAL_TEMPLATES = (
    "{w} movie", "{w} {year}", "{w} film {decade}", "that {genre} movie called something like {w}",
    "movie with '{w}' in the title", "{w}... the {decade} one", "what was that film, {w} something?",
    "{w} {genre} film", "title has {w} in it, {genre}", "looking for the {genre} movie {w} something",
    "{w} ({year})", "the {w} one from the {decade}", "film {w} {genre}", "{w} - {genre}",
)
TYPO_TEMPLATES = (
    "{t} {year}", "{t} movie", "{t} film {decade}", "watch {t}", "{t} ({genre})", "{t} {genre} movie",
    "where can i see {t}", "{t} {year} film", "movie {t}", "{t} the {genre} one",
)
GENRE_ERA_TEMPLATES = (
    "{era} {g}", "{article} {era} {g}", "{g} from the {era_long}", "looking for {article} {era} {g} movie",
    "good {era} {g} films", "{g} movie from the {era_long}", "best {g} movies of the {era_long}",
    "{era} {g} recommendations", "any {era} {g} movie", "{g} made in the {era_long}",
    "classic {era} {g}", "{g} {year_phrase}",
)
GENRE_ONLY_TEMPLATES = ("{g} movie", "good {g} films", "{article} {g} movie", "{g} recommendations")
VAGUE_TEMPLATES = (
    "{m} {c}", "recommend me {m} {c}", "i want {m} {c}", "any suggestions for {m}?", "need {m} {c}",
    "what should i watch {c}? {m}", "looking for {m}", "{m}, {era} maybe", "show me {m}",
    "in the mood for {m} {c}", "can you suggest {m} {c}", "{m} please",
)
RUNTIME_TEMPLATES = (  # {rt} is a post-modifier: "under 90 minutes", "over two hours long"
    "{g} movie {rt}", "{article} {g} film {rt}", "{era} {g} {rt}", "something {rt}, {g}",
    "{g} {rt} please", "need a {g} movie {rt}", "{g} film {rt}", "any {g} {rt}?",
)
RATING_TEMPLATES = (  # {rp} works before a noun or after a comma: "highly rated", "imdb 8+"
    "{rp} {g} movie", "{rp} {era} {g}", "{g} film, {rp}", "{rp} {g} from the {era_long}", "{rp} {g}",
    "{era} {g}, {rp}",
)
CERT_TEMPLATES = ("{cp} {g}", "{cp} {g} from the {era_long}", "{g} movie {cp}", "need a {cp} {g}",
                  "{era} {cp} {g}")
PLOT_TEMPLATES = (
    "movie where {a} ... {b} ...", "film about {a} and {b}", "the one with {a}, {b} and {c}",
    "{a} {b} {c} movie", "looking for a movie: {a}, {b}, {c}", "what's the film with {a} and {b}?",
    "plot has {a}, {b}, {c}", "{g} movie about {a} and {b}", "movie with {a} {b}, {era} i think",
    "film where {a} and {b} and {c}", "{a} {b} film", "trying to find a movie about {a}, {b}",
)
TAG_TEMPLATES = ("movie tagged {a}", "{a} {b} movie", "something {a}", "{a} film", "films like {a}, {b}",
                 "{g} with {a}")

KEYBOARD_ROWS = "qwertyuiop asdfghjkl zxcvbnm".split()  # neighbouring keys give realistic typos

# Refinements: what a query adds to single out its item ("..., 1995", "..., about 95 minutes long")
YEAR_SUFFIXES = ("from {y}", "({y})", "{y}", "released in {y}", "the {y} one")
GENRE_SUFFIXES = ("{g}", "a {g} one", "kind of {g}", "{g} i think")
