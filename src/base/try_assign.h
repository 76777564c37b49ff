// DROVER_TRY_ASSIGN(lhs, expr): evaluates `expr` (a Result<T>), returns its error from the
// current function if it has one, else moves its value into `lhs` (a declaration or an
// lvalue). For parsers that read field after field; kept out of result.h so that header,
// included everywhere, does not change for it.
//
// It expands to several statements: use it as a statement of its own (in braces after an
// if), and wrap an `expr` with a top-level comma, such as a braced initializer, in parentheses.
#pragma once

#include <utility>

#include "base/result.h"

// `tmp` is a name being declared and `lhs` may be a declaration: neither can be in
// parentheses, which is what the check asks of macro arguments.
// NOLINTBEGIN(bugprone-macro-parentheses)
#define DROVER_TRY_ASSIGN_CONCAT_(a, b) a##b
#define DROVER_TRY_ASSIGN_NAME_(line) DROVER_TRY_ASSIGN_CONCAT_(drover_try_assign_, line)
#define DROVER_TRY_ASSIGN_IMPL_(tmp, lhs, expr) \
  auto tmp = (expr);                            \
  if (!tmp.ok()) return tmp.error();            \
  lhs = std::move(*tmp)
#define DROVER_TRY_ASSIGN(lhs, expr) \
  DROVER_TRY_ASSIGN_IMPL_(DROVER_TRY_ASSIGN_NAME_(__LINE__), lhs, expr)
// NOLINTEND(bugprone-macro-parentheses)
