"""Headings are read as the seeds write them: ATX, setext, not in fences or front matter."""

from __future__ import annotations

from gameday.runbooks.seeds import find_heading, parse_headings

TEXT = """---
title: Error Pattern Reference
sidebar_position: 5
---

# Error Pattern Reference

## Error Categories

### Deployment Errors

#### DEPLOYMENT001: CRD Not Found

```bash
# Update CRDs
kubectl apply -f crds.yaml
```

#### Error: `Address already in use` ##

~~~
## not a heading either
~~~

Underlined Title
================

Symptoms
--------

---

### Symptoms
"""


def test_atx_headings_with_their_parents() -> None:
    headings = parse_headings(TEXT)
    texts = [h.text for h in headings]
    assert texts == [
        "Error Pattern Reference",
        "Error Categories",
        "Deployment Errors",
        "DEPLOYMENT001: CRD Not Found",
        "Error: `Address already in use`",
        "Underlined Title",
        "Symptoms",
        "Symptoms",
    ]
    crd = headings[3]
    assert (crd.level, crd.line) == (4, 12)
    assert crd.parents == ("Error Pattern Reference", "Error Categories", "Deployment Errors")
    assert crd.anchor == "deployment001-crd-not-found"


def test_front_matter_and_fences_are_not_headings() -> None:
    texts = [h.text for h in parse_headings(TEXT)]
    assert "sidebar_position: 5" not in texts
    assert "Update CRDs" not in texts
    assert "not a heading either" not in texts


def test_setext_headings_and_a_rule_after_a_blank_line() -> None:
    headings = parse_headings(TEXT)
    underlined = headings[5]
    assert (underlined.level, underlined.text, underlined.parents) == (1, "Underlined Title", ())
    symptoms = headings[6]
    assert (symptoms.level, symptoms.parents) == (2, ("Underlined Title",))
    # the `---` after a blank line is a thematic break, not a heading
    assert sum(1 for h in headings if h.text == "") == 0


def test_within_disambiguates_repeated_headings() -> None:
    headings = parse_headings(TEXT)
    assert len(find_heading(headings, "Symptoms")) == 2
    (inner,) = find_heading(headings, "Symptoms", within="Symptoms")
    assert inner.level == 3
    assert find_heading(headings, "Symptoms", within="Deployment Errors") == []
