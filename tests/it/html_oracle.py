"""The oracle of the `html::` differential tests: BeautifulSoup over the
html5lib parser (which builds the HTML5 tree html5ever builds), soupsieve's
CSS selectors, and the HTML standard's form-submission algorithm written
out here on that tree.

Reads {"pages": [[name, text, url], ...], "selectors": [...], "parser": p}
as JSON on stdin, prints the same shape of result as the netscript side of
tests/it/html.rs builds, as JSON.

BeautifulSoup's html5lib builder files every string as a plain
NavigableString, where its other builders make strings inside <script>,
<style>, <template>, <rt> and <rp> a Script, Stylesheet... so that
`get_text()` of the page leaves them out; the strings are given those
classes here first, so the real `get_text` applies its documented rule.
"""

import json
import sys
from urllib.parse import urljoin

import bs4.element as E
from bs4 import BeautifulSoup

CONTAINERS = {
    "script": E.Script,
    "style": E.Stylesheet,
    "template": E.TemplateString,
    "rt": E.RubyTextString,
    "rp": E.RubyParenthesisString,
}
ASCII_WS = "\t\n\x0c\r "


def classify(soup):
    for s in list(soup.find_all(string=True)):
        if type(s) is not E.NavigableString:
            continue
        for parent in s.parents:
            cls = CONTAINERS.get(parent.name)
            if cls is not None:
                s.replace_with(cls(str(s)))
                break


def element(tag):
    return [tag.name, sorted(tag.attrs.items()), tag.get_text(), tag.get_text("|", True)]


def inert(el):
    """Inside a <template>'s contents (not part of the page, as in browsers)."""
    return el.find_parent("template") is not None


def base_url(soup, url):
    base = soup.find("base", href=True)
    if base is None:
        return url
    href = base["href"].strip(ASCII_WS)
    return urljoin(url, href) if url else href


def links(soup, url):
    base = base_url(soup, url)
    out = []
    for a in soup.find_all("a", href=True):
        if inert(a):
            continue
        href = a["href"].strip(ASCII_WS)
        out.append(urljoin(base, href) if base else href)
    return out


# --- the HTML standard's "constructing the entry list", on the bs4 tree ---


def barred(el):
    """Disabled by an ancestor fieldset (outside its first legend), or in a datalist."""
    child = el
    for anc in el.parents:
        if anc.name == "datalist":
            return True
        if anc.name == "fieldset" and anc.has_attr("disabled"):
            legend = anc.find("legend", recursive=False)
            if legend is None or child is not legend:
                return True
        child = anc
    return False


def owner(el, forms_by_id):
    if el.has_attr("form"):
        return forms_by_id.get(el["form"])
    return el.find_parent("form")


def collapse(s):
    for c in "\t\n\x0c\r":
        s = s.replace(c, " ")
    return " ".join(w for w in s.split(" ") if w)


def entries(el):
    name = el.get("name", "")
    if not name:
        return []
    if el.name == "input":
        kind = el.get("type", "").lower()
        value = el.get("value")
        if kind in ("checkbox", "radio"):
            return [(name, value if value is not None else "on")] if el.has_attr("checked") else []
        if kind in ("submit", "image", "reset", "button"):
            return []
        if kind == "file":
            return [(name, "")]
        if kind in ("email", "url"):
            v = (value or "").replace("\r", "").replace("\n", "")
            return [(name, v.strip(ASCII_WS))]
        if kind == "hidden":
            return [(name, value or "")]
        return [(name, (value or "").replace("\r", "").replace("\n", ""))]
    if el.name == "button":
        return []
    if el.name == "textarea":
        return [(name, "".join(el.find_all(string=True)))]
    # select
    opts = []
    for child in el.find_all(recursive=False):
        if child.name == "option":
            opts.append((child, False))
        elif child.name == "optgroup":
            off = child.has_attr("disabled")
            opts.extend((o, off) for o in child.find_all("option", recursive=False))
    selected = [o.has_attr("selected") for o, _ in opts]
    disabled = [off or o.has_attr("disabled") for o, off in opts]
    multiple = el.has_attr("multiple")
    size = el.get("size", "").strip()
    display = int(size) if size.isdigit() and int(size) > 0 else (4 if multiple else 1)
    if not multiple:
        if any(selected):
            last = max(i for i, s in enumerate(selected) if s)
            selected = [i == last for i in range(len(opts))]
        elif display == 1:
            for i, d in enumerate(disabled):
                if not d:
                    selected[i] = True
                    break
    return [
        (name, o["value"] if o.has_attr("value") else collapse("".join(o.find_all(string=True))))
        for (o, _), s, d in zip(opts, selected, disabled)
        if s and not d
    ]


def forms(soup, url):
    base = base_url(soup, url)
    all_forms = [f for f in soup.find_all("form") if not inert(f)]
    by_id = {}
    for f in all_forms:
        if f.has_attr("id"):
            by_id.setdefault(f["id"], f)
    fields = {id(f): [] for f in all_forms}
    for el in soup.find_all(["input", "button", "select", "textarea"]):
        f = owner(el, by_id)
        if f is None or inert(el) or el.has_attr("disabled") or barred(el):
            continue
        fields[id(f)].extend(list(p) for p in entries(el))
    out = []
    for f in all_forms:
        action = f.get("action", "").strip(ASCII_WS)
        if action == "" and url:
            action = url
        elif base:
            action = urljoin(base, action)
        method = f.get("method", "").lower()
        method = {"post": "POST", "dialog": "DIALOG"}.get(method, "GET")
        enctype = f.get("enctype", "").lower()
        if enctype not in ("multipart/form-data", "text/plain"):
            enctype = "application/x-www-form-urlencoded"
        out.append({"action": action, "method": method, "enctype": enctype, "fields": fields[id(f)]})
    return out


def page(text, url, selectors, parser):
    soup = BeautifulSoup(text, parser, multi_valued_attributes=None)
    classify(soup)
    title = soup.find("title")
    return {
        "text": soup.get_text(),
        "text_strip": soup.get_text("|", True),
        "title": title.get_text() if title is not None else None,
        "select": {css: [element(t) for t in soup.select(css)] for css in selectors},
        "links": links(soup, url),
        "forms": forms(soup, url),
    }


def main():
    job = json.load(sys.stdin)
    parser = job.get("parser", "html5lib")
    out = {name: page(text, url, job["selectors"], parser) for name, text, url in job["pages"]}
    json.dump(out, sys.stdout)


if __name__ == "__main__":
    main()
