#!/usr/bin/env python3
"""Writes tests/search/gold.json, the search gold set: queries a reader of the
sample news site would type, each with the articles it must find.

The site is tests/corpus/make-news-site.py's, with --articles 300
--seed 2014 --day 1 (its defaults but the article count). Its article()
gives every article's title, paragraphs and tags; this script never runs
samizdat. An article is EXPECTED for a query iff each of the query's parts
(a quoted group, a run of CJK, or a run of Latin words) occurs in one field
of the article's visible text (the title, one paragraph or one tag name) as
an exact substring after a simple normalization: full-width ASCII to
half-width, U+3000 to a space, the few Traditional characters this file uses
back to Simplified, lowercase. Latin words match as whole words, a word in
its singular or plural form ("right" finds "Rights", "policies" finds
"policy"). The search answers a superset of that (all tokens anywhere), so
recall against these sets must be 1.

`top` is the path that must rank first, or null. Ranking is by the number of
distinct query tokens in a page's <title>, so `top` is set only where one
page has strictly more than every other page (tag pages and the index
included) that holds all the query's tokens: ties are never asked about.
This part uses a small model of the tokenizer (CJK bigrams, words, the S
stemmer), and the self-check asserts that every expected article holds all
its query's tokens under that model.

Traditional forms come from Unihan's kTraditionalVariant (Debian's
unicode-data package); the characters used are written into gold.json
("hant", Simplified -> Traditional), so the test needs no Unihan:

  cd /tmp && apt-get download unicode-data && dpkg-deb -x unicode-data_*.deb /tmp/ud
  python3 tests/search/make-gold.py --unihan /tmp/ud/usr/share/unicode/Unihan_Variants.txt.bz2

  python3 tests/search/make-gold.py --check   # regenerate, self-check, compare with the committed file

Everything is deterministic: the same inputs write a byte-identical file.
"""
import argparse
import bz2
import html
import importlib.util
import json
import os
import random
import re
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CORPUS = ROOT / "tests" / "corpus" / "make-news-site.py"
OUT = ROOT / "tests" / "search" / "gold.json"
ARTICLES, SEED, DAY = 300, 2014, 1
HEADER = "China Digital Times (sample)"
UNIHAN_DEFAULTS = ["/usr/share/unicode/Unihan_Variants.txt.bz2", "/tmp/ud/usr/share/unicode/Unihan_Variants.txt.bz2"]
COUNTS = {"zh-title": 12, "zh-body": 12, "zh-hant": 10, "en": 10, "mixed": 6, "width": 4, "name": 4}
# Words every page holds (the header) or nearly every English article: useless
# as query words and excluded from picked phrases.
AVOID = {"china", "digital", "times", "sample"}


def load_corpus():
    spec = importlib.util.spec_from_file_location("make_news_site", CORPUS)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


# ---------------------------------------------------------------- normalization

def is_cjk(c):
    o = ord(c)
    return (0x3040 <= o <= 0x30FF or 0x3400 <= o <= 0x4DBF or 0x4E00 <= o <= 0x9FFF or 0xAC00 <= o <= 0xD7A3
            or 0xF900 <= o <= 0xFAFF or 0x20000 <= o <= 0x323AF)


def half_width(s):
    out = []
    for c in s:
        o = ord(c)
        if 0xFF01 <= o <= 0xFF5E:
            c = chr(o - 0xFEE0)
        elif o == 0x3000:
            c = " "
        out.append(c)
    return "".join(out)


def full_width(s, ideographic_space=False):
    out = []
    for c in s:
        if "!" <= c <= "~":
            c = chr(ord(c) + 0xFEE0)
        elif c == " " and ideographic_space:
            c = "\u3000"
        out.append(c)
    return "".join(out)


class Norm:
    def __init__(self, hant):  # hant: Simplified -> Traditional, for the characters used
        self.to_simp = {t: s for s, t in hant.items()}

    def __call__(self, s):
        return "".join(self.to_simp.get(c, c) for c in half_width(s)).lower()


def parts_of(qn):
    """A normalized query's parts: quoted groups, CJK runs, runs of Latin words."""
    parts = []
    for i, seg in enumerate(qn.split('"')):
        if i % 2 == 1:
            if seg.strip():
                parts.append(seg.strip())
            continue
        latin = []
        for chunk in seg.split():
            if any(is_cjk(c) for c in chunk):
                if latin:
                    parts.append(" ".join(latin))
                    latin = []
                parts.append(chunk)
            else:
                latin.append(chunk)
        if latin:
            parts.append(" ".join(latin))
    return parts


WORD = re.compile(r"[^\W_]+")


def forms(w):
    """A word's singular and plural spellings."""
    f = {w, w + "s"}
    if w.endswith("y"):
        f.add(w[:-1] + "ies")
    if w.endswith("ies"):
        f.add(w[:-3] + "y")
    if w.endswith("s"):
        f.add(w[:-1])
    return f


class Field(str):
    """A field's normalized text and its words."""

    @property
    def words(self):
        if not hasattr(self, "_words"):
            self._words = WORD.findall(self)
        return self._words


def part_in(part, field):
    if any(is_cjk(c) for c in part):
        return part in field
    want = [forms(w) for w in WORD.findall(part)]
    have = field.words if isinstance(field, Field) else WORD.findall(field)
    if not set(want[0]) & set(have):
        return False
    return any(all(have[i + k] in want[k] for k in range(len(want))) for i in range(len(have) - len(want) + 1))


# ---------------------------------------------------------------- token model (for `top` only)

def stem(w):
    if len(w) < 4 or not re.fullmatch("[a-z]+", w):
        return w
    if w.endswith("ies") and not w.endswith(("eies", "aies")):
        return w[:-3] + "y"
    if w.endswith("es") and not w.endswith(("aes", "ees", "oes")):
        return w[:-1]
    if w.endswith("s") and not w.endswith(("us", "ss")):
        return w[:-1]
    return w


def tokens(sn):
    """Tokens of normalized text: CJK bigrams (a lone character itself), stemmed words."""
    out, word, run = set(), "", ""

    def end_run():
        if len(run) == 1:
            out.add(run)
        for i in range(len(run) - 1):
            out.add(run[i:i + 2])

    for c in sn + " ":
        if is_cjk(c):
            if word:
                out.add(stem(word))
                word = ""
            run += c
            continue
        end_run()
        run = ""
        if c.isalnum():
            word += c
        elif word:
            out.add(stem(word))
            word = ""
    return out


# ---------------------------------------------------------------- the site

def site(mod):
    """Articles (path, title, fields) and every page's (path, title, text) as the generator writes them."""
    arts = [mod.article(SEED, i, DAY) for i in range(ARTICLES)]
    pages, by_tag = [], {}
    for a in arts:
        pages.append((a["path"], a["title"], "\n".join([HEADER, a["title"], *a["paras"], " ".join(a["tags"])])))
        for t in a["tags"]:
            by_tag.setdefault(t, []).append(a)
    for t, xs in by_tag.items():
        pages.append((f"tag/{t}/index.html", t, "\n".join([HEADER, t] + [x["title"] for x in xs[-200:]])))
    pages.append(("index.html", HEADER, "\n".join([HEADER] + [x["title"] for x in arts[-50:][::-1]])))
    return arts, pages


class Gold:
    def __init__(self, mod, hant):
        self.arts, pages = site(mod)
        self.hant = hant
        self.norm = Norm(hant)
        n = self.norm
        self.fields = {a["path"]: [Field(n(f)) for f in [a["title"], *a["paras"], *a["tags"]]] for a in self.arts}
        self.model = [(p, tokens(n(t)), tokens(n(t) + "\n" + n(x))) for p, t, x in pages]

    def expected(self, q):
        parts = parts_of(self.norm(q))
        return [a["path"] for a in self.arts
                if all(any(part_in(pt, f) for f in self.fields[a["path"]]) for pt in parts)]

    def qtokens(self, q):
        return tokens(self.norm(q).replace('"', " "))

    def top(self, q):
        qt = self.qtokens(q)
        scored = sorted(((len(qt & title), p) for p, title, alltok in self.model if qt <= alltok), reverse=True)
        if not scored or (len(scored) > 1 and scored[0][0] == scored[1][0]):
            return None
        return scored[0][1]

    def entry(self, q, kind, want_top=None, max_expected=8):
        """The gold entry for q, or None when q is no good: an empty or large
        expected set, or a top that is not the wanted one (want_top: a path,
        'any' for whatever unique top exists, or None for no top)."""
        exp = self.expected(q)
        if not exp or len(exp) > max_expected:
            return None
        top = self.top(q)
        if want_top == "any":
            top = top if top in exp else None
        elif want_top is None:
            top = None
        elif top != want_top:
            return None
        return {"q": q, "kind": kind, "expected": exp, "top": top}


# ---------------------------------------------------------------- Unihan

def unihan_table(path, hanzi):
    """Simplified -> Traditional for each corpus character whose Traditional
    form folds back to it: T is in S's kTraditionalVariant, T != S, and T's
    kSimplifiedVariant starts with S and does not list T itself (a character
    listing itself, like 裡 or 著, stays as it is)."""
    tv, sv = {}, {}
    for line in bz2.open(path, "rt", encoding="utf-8"):
        if line.startswith("#") or "\t" not in line:
            continue
        cp, field, vals = line.rstrip("\n").split("\t")
        if field in ("kTraditionalVariant", "kSimplifiedVariant"):
            d = tv if field == "kTraditionalVariant" else sv
            d[chr(int(cp[2:], 16))] = [chr(int(v.split("<")[0][2:], 16)) for v in vals.split()]
    table = {}
    for s in sorted(set(hanzi)):
        if s in sv and s not in sv[s]:
            continue  # s itself folds to something else
        for t in tv.get(s, []):
            if t != s and t not in sv.get(t, [t]) and sv[t][0] == s:
                table[s] = t
                break
    return table


# ---------------------------------------------------------------- picking

def windows(text, lo, hi):
    """(start, length) of CJK-only windows of text with lo..hi characters."""
    out = []
    for n in range(lo, hi + 1):
        for i in range(len(text) - n + 1):
            if all(is_cjk(c) for c in text[i:i + n]):
                out.append((i, n))
    return out


def pick(mod, table):
    rng = random.Random(20140001)
    g = Gold(mod, {})  # phrases are picked in Simplified; Traditional entries are checked again later
    zh = [a for a in g.arts if a["lang"] == "zh"]
    en = [a for a in g.arts if a["lang"] == "en" and a["path"] != g.arts[0]["path"]]
    taken, out = set(), {k: [] for k in COUNTS}

    def add(kind, e):
        if e and e["q"] not in taken:
            taken.add(e["q"])
            out[kind].append(e)
            return True
        return False

    def title_phrase(a, lo, hi, need_trad=False):
        ws = windows(a["title"], lo, hi)
        if need_trad:
            ws = [(i, n) for i, n in ws if all(c in table for c in a["title"][i:i + n])]
        if not ws:
            return None
        i, n = rng.choice(ws)
        return a["title"][i:i + n]

    def body_phrase(a, lo, hi, need_trad=False, tries=40):
        for _ in range(tries):
            p = rng.choice(a["paras"])
            n = rng.randint(lo, hi)
            i = rng.randrange(0, max(1, len(p) - n))
            ph = p[i:i + n]
            if len(ph) == n and all(is_cjk(c) for c in ph) and (not need_trad or all(c in table for c in ph)):
                return ph
        return None

    # Chinese phrases from titles: 4-6 characters, the article must rank first.
    for a in rng.sample(zh, len(zh)):
        if len(out["zh-title"]) >= COUNTS["zh-title"] + 2:
            break
        ph = title_phrase(a, 4, 6)
        add("zh-title", ph and g.entry(ph, "zh-title", a["path"]))
    # Chinese phrases from bodies: 4-8 characters; top where one page alone holds the tokens.
    for a in rng.sample(zh, len(zh)):
        if len(out["zh-body"]) >= COUNTS["zh-body"] + 2:
            break
        ph = body_phrase(a, 4, 8)
        add("zh-body", ph and g.entry(ph, "zh-body", "any"))
    # The same in Traditional: every character has its own Traditional form.
    hant = {}

    def trad(ph):
        """ph in Traditional characters (a character that has none stays)."""
        for c in ph:
            if c in table:
                hant[c] = table[c]
        return "".join(table.get(c, c) for c in ph)

    for a in rng.sample(zh, len(zh)):
        if sum(e["src"] == "title" for e in out["zh-hant"]) >= 5:
            break
        ph = title_phrase(a, 3, 5, need_trad=True)
        e = ph and g.entry(ph, "zh-hant", a["path"])
        if e and add("zh-hant", e):
            e["q"], e["src"] = trad(ph), "title"
    for a in rng.sample(zh, len(zh)):
        if len(out["zh-hant"]) >= COUNTS["zh-hant"] + 2:
            break
        ph = body_phrase(a, 4, 6, need_trad=True, tries=400)
        e = ph and g.entry(ph, "zh-hant", "any")
        if e and add("zh-hant", e):
            e["q"], e["src"] = trad(ph), "body"
    for e in out["zh-hant"]:
        del e["src"]

    # English: 3-4 consecutive title words, the article must rank first; some
    # with a plural made singular or a singular made plural.
    stop = set(mod.ENGLISH[:mod.ENGLISH.index("rights")])  # the, of, and, ... there

    def en_title_words(a, n):
        ws = a["title"].split()
        starts = [i for i in range(len(ws) - n + 1) if not {w.lower() for w in ws[i:i + n]} & AVOID
                  and sum(w.lower() in stop for w in ws[i:i + n]) <= 1 and len({w.lower() for w in ws[i:i + n]}) == n]
        if not starts:
            return None
        i = rng.choice(starts)
        return ws[i:i + n]

    def vary(ws):
        """Changes the number of one word that has a plural/singular partner in the corpus."""
        for k, w in enumerate(ws):
            lw = w.lower()
            if lw in ("rights", "citizens"):
                return ws[:k] + [w[:-1]] + ws[k + 1:]
            if lw == "policy":
                return ws[:k] + ["Policies"] + ws[k + 1:]
            if lw in ("court", "lawyer", "activist", "petition", "report", "statement", "reader", "editor",
                      "campaign", "movement", "province", "mirror", "archive", "article", "official"):
                return ws[:k] + [w + "s"] + ws[k + 1:]
        return None

    add("en", g.entry("human right", "en", g.arts[0]["path"]))
    add("en", g.entry("Chinese Interest", "en", g.arts[0]["path"]))
    varied = 0
    for a in rng.sample(en, len(en)):
        if len(out["en"]) >= COUNTS["en"] + 4:
            break
        ws = en_title_words(a, rng.choice([3, 4]))
        if not ws:
            continue
        v = vary(ws) if varied < 5 else None
        q = " ".join(v or ws)
        if rng.random() < 0.5:
            q = q.lower()
        if add("en", g.entry(q, "en", a["path"])) and v:
            varied += 1

    # Mixed: a tag name plus a phrase from the title of an article with that tag.
    for a in rng.sample(g.arts[1:], len(g.arts) - 1):
        if len(out["mixed"]) >= COUNTS["mixed"] + 2:
            break
        tag = rng.choice(a["tags"])
        if a["lang"] == "zh":
            ph = title_phrase(a, 3, 4)
        else:
            ws = en_title_words(a, 3)
            ph = ws and " ".join(ws).lower()
        if not ph:
            continue
        t = f'"{tag}"' if " " in tag and a["lang"] == "en" else tag
        add("mixed", g.entry(f"{t} {ph}", "mixed", a["path"]))

    # A tag written in Traditional characters with a title phrase.
    for a in rng.sample(zh, len(zh)):
        if "网络审查" not in a["tags"]:
            continue
        ph = title_phrase(a, 5, 5)
        e = ph and g.entry(f"网络审查 {ph}", "mixed", a["path"])
        if e and add("mixed", e):
            e["q"] = trad("网络审查") + " " + ph
            break

    # Full-width and case variants.
    add("width", g.entry(full_width("HUMAN rights"), "width", g.arts[0]["path"]))
    add("width", g.entry(full_width("Julia Famularo".upper(), True), "width", g.arts[0]["path"]))
    add("width", g.entry(full_width("Project 2049"), "width", g.arts[0]["path"]))
    for e in list(out["en"])[2:]:
        if len(out["width"]) >= COUNTS["width"] + 2:
            break
        add("width", g.entry(full_width(e["q"].upper(), True), "width", e["top"]))
    for e in list(out["mixed"]):
        if len(out["width"]) >= COUNTS["width"] + 3:
            break
        if not any(is_cjk(c) for c in e["q"]):
            add("width", g.entry(full_width(e["q"].upper(), True), "width", e["top"]))
    add("width", g.entry(full_width("XU ZHIYONG", True), "width", None, max_expected=300))

    # Names: tags (their tag page outranks the articles: no top asked) and article 0's people.
    add("name", g.entry("Julia Famularo", "name", g.arts[0]["path"]))
    add("name", g.entry("Ian Johnson", "name", g.arts[0]["path"]))
    add("name", g.entry("The Diplomat", "name", g.arts[0]["path"]))
    for tag in ("Xu Zhiyong", "Hong Kong", "Tibet", "Xinjiang"):
        add("name", g.entry(tag, "name", None, max_expected=300))

    queries = [e for k in COUNTS for e in out[k]]
    return queries, dict(sorted(hant.items()))


# ---------------------------------------------------------------- checks

def self_check(mod, gold):
    """Asserts the gold set is consistent with the generated site and with itself."""
    g = Gold(mod, gold["hant"])
    kinds = {}
    for e in gold["queries"]:
        kinds[e["kind"]] = kinds.get(e["kind"], 0) + 1
    for k, n in COUNTS.items():
        assert kinds.get(k, 0) >= n, f"{k}: {kinds.get(k, 0)} queries, want {n}"
    assert len(gold["queries"]) >= 64, len(gold["queries"])
    assert len({e["q"] for e in gold["queries"]}) == len(gold["queries"]), "duplicate queries"
    model = {p: alltok for p, _, alltok in g.model}
    for e in gold["queries"]:
        q = e["q"]
        assert e["expected"], q
        assert e["expected"] == g.expected(q), q
        assert e["top"] is None or e["top"] in e["expected"], q
        assert e["top"] is None or e["top"] == g.top(q), q
        # The search finds every page that has all the tokens; the substring sets must be inside that.
        qt = g.qtokens(q)
        assert qt, q
        for p in e["expected"]:
            assert qt <= model[p], (q, p, qt - model[p])
        if e["kind"] == "zh-hant":
            assert all(c in gold["hant"].values() for c in q), q
            assert all(c not in g.norm(q) for c in q), f"{q}: a character does not fold"
        if e["kind"] == "width":
            assert any(0xFF01 <= ord(c) <= 0xFF5E for c in q), q
    # The real HTML: generate the site and find each expected article holds each part.
    with tempfile.TemporaryDirectory() as d:
        out = os.path.join(d, "site")
        subprocess.run([sys.executable, str(CORPUS), "--out", out, "--articles", str(ARTICLES),
                        "--seed", str(SEED), "--day", str(DAY)], check=True, stdout=subprocess.DEVNULL)
        texts = {}
        for e in gold["queries"]:
            for p in e["expected"]:
                if p not in texts:
                    raw = Path(out, p).read_text(encoding="utf-8")
                    texts[p] = [g.norm(html.unescape(t)) for t in re.split(r"<[^>]*>", raw)]
                for pt in parts_of(g.norm(e["q"])):
                    assert any(part_in(pt, t) for t in texts[p]), (e["q"], p, pt)
            if e["top"]:
                assert Path(out, e["top"]).is_file(), e["top"]
    return kinds


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--unihan", help="Unihan_Variants.txt.bz2 (default: " + " or ".join(UNIHAN_DEFAULTS) + ")")
    ap.add_argument("--check", action="store_true", help="do not write: fail unless the committed file is what this makes")
    args = ap.parse_args()
    unihan = args.unihan or next((p for p in UNIHAN_DEFAULTS if os.path.exists(p)), None)
    if not unihan or not os.path.exists(unihan):
        raise SystemExit("Unihan_Variants.txt.bz2 not found; see --help for how to get it")
    mod = load_corpus()
    table = unihan_table(unihan, mod.HANZI)
    queries, hant = pick(mod, table)
    gold = {"articles": ARTICLES, "seed": SEED, "day": DAY, "hant": hant, "queries": queries}
    kinds = self_check(mod, gold)
    text = json.dumps(gold, ensure_ascii=False, indent=1) + "\n"
    if args.check:
        if OUT.read_text(encoding="utf-8") != text:
            raise SystemExit(f"{OUT} is not what make-gold.py makes: re-run it")
        print(f"{OUT.relative_to(ROOT)}: up to date")
    else:
        OUT.write_text(text, encoding="utf-8")
        print(f"{OUT.relative_to(ROOT)}:", len(queries), "queries,", ", ".join(f"{k} {n}" for k, n in kinds.items()),
              f"; {len(hant)} Traditional characters")


if __name__ == "__main__":
    main()
