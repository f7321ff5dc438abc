"""Which names a cell uses without defining, and which names a cell defines.

The trusted grader runs a test cell in its own process: the names the cell uses but does not
define (imports, assignments, defs) must come from the student's sandbox, and the course contract
says those may only be names the solution cells define.
"""

from __future__ import annotations

import builtins
import symtable

BUILTIN_NAMES = frozenset(dir(builtins))


def _module_table(source: str) -> symtable.SymbolTable:
    return symtable.symtable(source, "<cell>", "exec")


def defined_names(source: str) -> set[str]:
    """Top-level names a cell binds: defs, classes, assignments, imports."""
    table = _module_table(source)
    return {s.get_name() for s in table.get_symbols() if s.is_assigned() or s.is_imported()}


def free_names(source: str) -> set[str]:
    """Names a cell reads at module level or from nested scopes without binding them itself.

    Builtins are left out. A name both read and assigned at top level counts as defined.
    """
    table = _module_table(source)
    bound = {s.get_name() for s in table.get_symbols() if s.is_assigned() or s.is_imported()}
    used: set[str] = set()

    def visit(tab: symtable.SymbolTable) -> None:
        for sym in tab.get_symbols():
            if tab is table:
                if sym.is_referenced():
                    used.add(sym.get_name())
            elif sym.is_referenced() and sym.is_global():
                used.add(sym.get_name())
        for child in tab.get_children():
            visit(child)

    visit(table)
    return {name for name in used - bound if name not in BUILTIN_NAMES}
