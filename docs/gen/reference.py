"""mkdocs-gen-files script: the reference pages, generated from the code at build time.

- `reference/cli.md` from the argparse parser of `shelfwise.cli` (every subcommand, its
  flags, defaults and help);
- `reference/http.md` from `create_app().openapi()` (no store is opened: the app's lifespan,
  which opens it, does not run for the schema);
- `reference/settings.md` from the pydantic-settings classes (`SHELFWISE_*` variables);
- `reference/python/*.md`: one mkdocstrings page per sub-package and top-level module;
- the benchmark plots of `benchmarks/results/*.png`, copied into `benchmarks/img/`.

Nothing generated here is committed, so the pages cannot drift from the code.
"""

from __future__ import annotations

import argparse
import ast
import importlib
import json
import os
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import manifest

# Document this checkout's sources, whatever copy of Shelfwise the environment installed.
sys.path.insert(0, str(manifest.SRC))


def _cell(text: object) -> str:
    """Text safe inside a Markdown table cell."""
    return str(text).replace("|", "\\|").replace("\n", " ").strip()


# ---- CLI ------------------------------------------------------------------------------------


def _subcommands(parser: argparse.ArgumentParser) -> list[tuple[str, str, Any]]:
    out = []
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            helps = {a.dest: a.help for a in action._choices_actions}
            for name, sub in action.choices.items():
                out.append((name, helps.get(name) or "", sub))
    return out


def _options(parser: argparse.ArgumentParser) -> list[str]:
    rows = ["| argument | default | help |", "|---|---|---|"]
    for action in parser._actions:
        if isinstance(action, (argparse._HelpAction, argparse._SubParsersAction)):
            continue
        if action.help == argparse.SUPPRESS:
            continue
        flags = ", ".join(f"`{s}`" for s in action.option_strings) or f"`{action.dest}`"
        if action.choices and not isinstance(action.choices, dict):
            flags += " {" + ", ".join(str(c) for c in action.choices) + "}"
        elif action.metavar and action.option_strings:
            flags += f" `{action.metavar}`"
        default = action.default
        shown = "" if default in (None, False, argparse.SUPPRESS) or action.required else default
        if action.required and action.option_strings:
            shown = "required"
        rows.append(
            f"| {_cell(flags)} | {_cell(f'`{shown}`' if shown != '' else '')} | "
            f"{_cell(action.help or '')} |"
        )
    return rows if len(rows) > 2 else []


def _command(name: str, helptext: str, parser: argparse.ArgumentParser, level: int) -> list[str]:
    lines = [f"{'#' * level} `{name}`", ""]
    if helptext:
        lines += [helptext[0].upper() + helptext[1:] + ".", ""]
    if parser.description and parser.description != helptext:
        lines += [parser.description, ""]
    lines += ["```", parser.format_usage().replace("usage: ", "").strip(), "```", ""]
    lines += _options(parser)
    lines.append("")
    for sub_name, sub_help, sub in _subcommands(parser):
        lines += _command(f"{name} {sub_name}", sub_help, sub, min(level + 1, 4))
    return lines


def cli_page() -> str:
    """Every subcommand of `shelfwise`, from the parser the command itself uses."""
    from shelfwise.cli import build_parser

    os.environ["COLUMNS"] = "100"  # argparse wraps usage lines to the terminal width

    parser = build_parser()
    parser.prog = "shelfwise"
    lines = [
        "# Command line",
        "",
        "Generated from the argparse parser of `shelfwise.cli` when the site is built; "
        "`shelfwise COMMAND --help` prints the same.",
        "",
        "```",
        parser.format_usage().replace("usage: ", "").strip(),
        "```",
        "",
        *_options(parser),
        "",
    ]
    for name, helptext, sub in _subcommands(parser):
        lines += _command(f"shelfwise {name}", helptext, sub, 2)
    return "\n".join(lines)


# ---- HTTP -----------------------------------------------------------------------------------


def _type(schema: dict[str, Any]) -> str:
    if "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[-1]
        return f"[{name}](#{name.lower()})"
    if "anyOf" in schema:
        kinds = [_type(s) for s in schema["anyOf"] if s.get("type") != "null"]
        return " or ".join(kinds) + (" or null" if len(kinds) < len(schema["anyOf"]) else "")
    if "enum" in schema:
        return "one of " + ", ".join(f"`{v}`" for v in schema["enum"])
    kind = schema.get("type", "any")
    if kind == "array":
        return f"array of {_type(schema.get('items', {}))}"
    bounds = [
        f"{label} {schema[key]:g}" if isinstance(schema[key], float) else f"{label} {schema[key]}"
        for key, label in (
            ("minimum", ">="),
            ("maximum", "<="),
            ("maxLength", "length <="),
            ("maxItems", "items <="),
        )
        if key in schema
    ]
    return kind + (f" ({', '.join(bounds)})" if bounds else "")


def _param_bounds(schema: dict[str, Any]) -> str:
    return _type(schema)


def http_page() -> str:
    """Every operation and schema of the API, from the app's own OpenAPI document."""
    from shelfwise.serve.app import create_app

    spec = create_app().openapi()
    info = spec["info"]
    lines = [
        "# HTTP API",
        "",
        f"Generated from `create_app().openapi()` ({info['title']} {info['version']}, OpenAPI "
        f"{spec['openapi']}) when the site is built. A running server serves the same schema "
        "at `/openapi.json` and interactive documentation at `/docs`. Scopes, keys and limits: "
        "[Security](../guides/security.md).",
        "",
        info.get("description", ""),
        "",
    ]
    by_tag: dict[str, list[tuple[str, str, dict[str, Any]]]] = {}
    for path, ops in spec["paths"].items():
        for method, op in ops.items():
            by_tag.setdefault((op.get("tags") or ["other"])[0], []).append((method, path, op))
    for tag, ops in by_tag.items():
        lines += [f"## {tag}", ""]
        for method, path, op in ops:
            lines += [f"### `{method.upper()} {path}`", "", op.get("description") or "", ""]
            auth = "API key" if op.get("security") else "none"
            lines += [f"Authentication: {auth}.", ""]
            params = op.get("parameters", [])
            if params:
                lines += [
                    "| parameter | in | type | default | description |",
                    "|---|---|---|---|---|",
                ]
                for p in params:
                    schema = p.get("schema", {})
                    default = schema.get("default")
                    req = " (required)" if p.get("required") else ""
                    lines.append(
                        f"| `{p['name']}`{req} | {p['in']} | {_cell(_param_bounds(schema))} | "
                        f"{'' if default is None else _cell(f'`{json.dumps(default)}`')} | "
                        f"{_cell(p.get('description', ''))} |"
                    )
                lines.append("")
            body = op.get("requestBody")
            if body:
                schema = next(iter(body["content"].values()))["schema"]
                lines += [f"Request body: {_type(schema)}. {schema.get('description', '')}", ""]
            codes = []
            for code, resp in op.get("responses", {}).items():
                content = resp.get("content", {}).get("application/json", {}).get("schema")
                codes.append(
                    f"`{code}` {resp.get('description', '')}"
                    + (f" ({_type(content)})" if content else "")
                )
            lines += ["Responses: " + "; ".join(codes) + ".", ""]
    lines += ["## Schemas", ""]
    for name, schema in spec.get("components", {}).get("schemas", {}).items():
        lines += [f"### {name}", "", schema.get("description", ""), ""]
        props = schema.get("properties", {})
        required = set(schema.get("required", []))
        if props:
            lines += ["| field | type | default | description |", "|---|---|---|---|"]
            for field, sub in props.items():
                default = sub.get("default")
                lines.append(
                    f"| `{field}`{' (required)' if field in required else ''} | "
                    f"{_cell(_type(sub))} | "
                    f"{'' if default is None else _cell(f'`{json.dumps(default)}`')} | "
                    f"{_cell(sub.get('description', ''))} |"
                )
            lines.append("")
    return "\n".join(lines)


# ---- settings -------------------------------------------------------------------------------

#: Settings classes to document: the one `Settings`, with its nested sections.
SETTINGS_CLASSES = ("shelfwise.settings:Settings",)


def _field_comments(cls: type) -> dict[str, str]:
    """`#:` comments above each field of a class, read from its source."""
    source = Path(sys.modules[cls.__module__].__file__ or "").read_text()
    lines = source.splitlines()
    out: dict[str, str] = {}
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.ClassDef) and node.name == cls.__name__:
            for stmt in node.body:
                if isinstance(stmt, ast.AnnAssign) and isinstance(stmt.target, ast.Name):
                    comment: list[str] = []
                    i = stmt.lineno - 2
                    while i >= 0 and lines[i].strip().startswith("#:"):
                        comment.insert(0, lines[i].strip()[2:].strip())
                        i -= 1
                    out[stmt.target.id] = " ".join(comment)
    return out


def _annotation(kind: Any) -> str:
    """A readable type: `Literal` values spelled out, module prefixes dropped."""
    import typing

    if typing.get_origin(kind) is typing.Literal:
        return "one of " + ", ".join(f"`{v}`" for v in typing.get_args(kind))
    if isinstance(kind, type):
        return kind.__name__
    return str(kind).replace("typing.", "").replace("pathlib.", "")


def _settings_rows(cls: Any, prefix: str, delimiter: str | None) -> list[str]:
    from pydantic import BaseModel

    rows = []
    comments = _field_comments(cls)
    for name, field in cls.model_fields.items():
        kind = field.annotation
        if isinstance(kind, type) and issubclass(kind, BaseModel):
            # a nested section: SHELFWISE_SECTION__FIELD with a nested delimiter, else the
            # whole section as JSON in SHELFWISE_SECTION
            section = f"{prefix}{name.upper()}"
            nested = f"{section}{delimiter}" if delimiter else f"{section}."
            rows += _settings_rows(kind, nested, delimiter)
            continue
        text = field.description or comments.get(name, "")
        default = field.get_default(call_default_factory=True)
        shown = '""' if default == "" else str(default)
        variable = f"{prefix}{name.upper()}" if not prefix.endswith(".") else f"{prefix}{name}"
        rows.append(
            f"| `{variable}` | {_cell(_annotation(kind))} | {_cell(f'`{shown}`')} | {_cell(text)} |"
        )
    return rows


def _direct_variables() -> dict[str, list[str]]:
    """`SHELFWISE_*` names spelled out in the sources: variable -> modules naming it."""
    found: dict[str, list[str]] = {}
    for path in sorted(manifest.PACKAGE.rglob("*.py")):
        module = ".".join(path.relative_to(manifest.SRC).with_suffix("").parts)
        for node in ast.walk(ast.parse(path.read_text())):
            if (
                isinstance(node, ast.Constant)
                and isinstance(node.value, str)
                and node.value.startswith("SHELFWISE_")
                and node.value[10:].replace("_", "").isalnum()
                and node.value[10:].isupper()
            ):
                found.setdefault(node.value, [])
                if module not in found[node.value]:
                    found[node.value].append(module.removesuffix(".__init__"))
    return found


def settings_page() -> str:
    """Every `SHELFWISE_*` variable the settings classes read."""
    lines = [
        "# Settings",
        "",
        "Generated from the pydantic-settings classes when the site is built. Every field is "
        "read from an environment variable; command-line flags win over them.",
        "",
    ]
    covered: set[str] = set()
    for target in SETTINGS_CLASSES:
        module_name, _, cls_name = target.partition(":")
        try:
            cls = getattr(importlib.import_module(module_name), cls_name)
        except (ImportError, AttributeError):
            continue
        config = cls.model_config
        prefix = config.get("env_prefix", "")
        delimiter = config.get("env_nested_delimiter")
        lines += [f"## `{module_name}.{cls_name}`", "", (cls.__doc__ or "").strip(), ""]
        lines += ["| variable | type | default | meaning |", "|---|---|---|---|"]
        rows = _settings_rows(cls, prefix, delimiter)
        covered.update(row.split("`")[1] for row in rows)
        lines += rows
        lines.append("")
    from shelfwise.settings import SHORT_NAMES

    lines += [
        "## Short names",
        "",
        "The names of the first version keep working; a nested name wins over a short one.",
        "",
        "| variable | same as |",
        "|---|---|",
    ]
    for short, (section, field) in SHORT_NAMES.items():
        variable = f"SHELFWISE_{short.upper()}"
        covered.add(variable)
        lines.append(f"| `{variable}` | `SHELFWISE_{section.upper()}__{field.upper()}` |")
    lines.append("")
    direct = {k: v for k, v in _direct_variables().items() if k not in covered}
    if direct:
        lines += [
            "## Read directly from the environment",
            "",
            "Variables that modules read themselves rather than through a settings class.",
            "",
            "| variable | read by |",
            "|---|---|",
        ]
        for variable, modules in sorted(direct.items()):
            lines.append(f"| `{variable}` | {', '.join(f'`{m}`' for m in modules)} |")
        lines.append("")
    return "\n".join(lines)


# ---- Python API -----------------------------------------------------------------------------


def python_pages() -> dict[str, str]:
    """One page per sub-package (its modules below it) and per top-level module."""
    pages = {}
    index = [
        "# Python API",
        "",
        "Generated from the docstrings with mkdocstrings when the site is built: one page per "
        "sub-package of `shelfwise` (its modules below it) and per top-level module.",
        "",
    ]
    for unit in manifest.python_units():
        modules = manifest.submodules(unit)
        body = [f"# `{unit}`", ""]
        if modules:
            body += [
                f"::: {unit}",
                "    options:",
                "      members: false",
                "      show_root_heading: false",
                "",
            ]
            for module in modules:
                body += [f"::: {module}", ""]
        else:
            body += [f"::: {unit}", "    options:", "      show_root_heading: false", ""]
        pages[f"reference/python/{unit}.md"] = "\n".join(body)
        index.append(f"- [`{unit}`]({unit}.md)" + (f": {len(modules)} modules" if modules else ""))
    pages["reference/python/index.md"] = "\n".join(index) + "\n"
    return pages


def all_pages() -> dict[str, str]:
    """Every generated page: path inside docs/ -> Markdown."""
    return {
        "reference/cli.md": cli_page(),
        "reference/http.md": http_page(),
        "reference/settings.md": settings_page(),
        **python_pages(),
    }


def main() -> None:
    """Write every generated page and copy the plots."""
    import mkdocs_gen_files

    pages = all_pages()
    for path, text in pages.items():
        with mkdocs_gen_files.open(path, "w") as fh:
            fh.write(text)
    for name in manifest.plots():
        with mkdocs_gen_files.open(f"{manifest.PLOT_DIR}/{name}", "wb") as fh:
            fh.write((manifest.RESULTS / name).read_bytes())
    missing = (
        manifest.generated_paths()
        - set(pages)
        - {f"{manifest.PLOT_DIR}/{n}" for n in manifest.plots()}
    )
    if missing:
        raise RuntimeError(f"docs/gen/manifest.py lists pages nothing generated: {missing}")


if __name__ == "<run_path>":  # how mkdocs-gen-files runs this script
    main()
elif __name__ == "__main__":  # preview: python docs/gen/reference.py reference/cli.md
    generated = all_pages()
    print(generated[sys.argv[1]] if len(sys.argv) > 1 else "\n".join(generated))
