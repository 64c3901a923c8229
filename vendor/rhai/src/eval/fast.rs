//! (Patched) Loop bodies run from a pre-resolved form.
//!
//! From a loop's second iteration on, its body is evaluated through a [`FastBlock`], built
//! once for that run of the loop. Statements and expressions are pre-sorted, and every call
//! site keeps the native function its last call resolved to, with the argument types it
//! was resolved for: later calls with the same types go straight to it, with no dispatch on
//! the expression kind, no hashing and no resolution-cache lookup.
//!
//! A body made only of what this file knows (`let`, assignments to variables, `if`,
//! `break`/`continue`/`return`, expression and call statements; literals, variables, array
//! literals, binary operators, function calls and `variable.method(..)` calls) runs in
//! *slot mode*: its own variables live in a frame of slots, cleared at the end of each
//! iteration as the scope would be rewound, and the variables it reads from outside are
//! found once, by their scope index. Any other body runs in *scope mode*: its variables are
//! pushed onto the scope as usual and everything this file does not know is run by the
//! evaluator, statement by statement, on the same scope.
//!
//! The semantics are the evaluator's own: this file mirrors its steps (operation counts,
//! argument order, first arguments by reference, read-only copies, error positions) and
//! hands every uncached call to the same functions the evaluator calls. What a cached entry
//! depends on: the function name and style, the argument count and types (kept with the
//! entry and compared on every call), and the set of imported modules (the entry is dropped
//! when it changes). The entries are copied from the resolution cache, which keeps only
//! native functions that no script function overrides; script functions cannot appear
//! while a loop runs.

use super::{Caches, FnResolutionCacheEntry, GlobalRuntimeState, Target};
use crate::ast::{ASTFlags, ASTNode, BinaryExpr, Expr, FnCallExpr, OpAssignment, Stmt};
use crate::engine::{
    KEYWORD_EVAL, KEYWORD_FN_PTR, KEYWORD_FN_PTR_CALL, KEYWORD_FN_PTR_CURRY, KEYWORD_IS_DEF_VAR,
};
use crate::func::get_builtin_binary_op_fn;
use crate::types::dynamic::{AccessMode, Union};
use crate::{Dynamic, Engine, FnArgsVec, Ident, Position, RhaiResult, RhaiResultOf, Scope, Token, ERR};
use std::any::TypeId;
use std::ops::Range;
#[cfg(feature = "no_std")]
use std::prelude::v1::*;

/// A loop's body: run by the evaluator the first time, then (when it has anything to
/// gain) as a [`FastBlock`].
pub(crate) struct LoopBody<'a> {
    stmts: &'a [Stmt],
    /// The condition of a `while` or `do` loop.
    cond: Option<&'a Expr>,
    state: State<'a>,
}

enum State<'a> {
    Fresh,
    Fast(FastBlock<'a>),
    Slow,
}

impl<'a> LoopBody<'a> {
    pub(crate) const fn new(stmts: &'a [Stmt]) -> Self {
        Self {
            stmts,
            cond: None,
            state: State::Fresh,
        }
    }

    pub(crate) const fn with_cond(stmts: &'a [Stmt], cond: &'a Expr) -> Self {
        Self {
            stmts,
            cond: Some(cond),
            state: State::Fresh,
        }
    }
}

/// A loop body in pre-resolved form.
struct FastBlock<'a> {
    stmts: Vec<FastStmt<'a>>,
    /// The loop's condition, evaluated outside the body.
    cond: Option<FastExpr<'a>>,
    /// The slots of slot mode (empty in scope mode, or for a body without variables).
    frame: Vec<Dynamic>,
    slot_mode: bool,
}

/// Where a variable is.
#[derive(Clone, Copy)]
enum Var<'a> {
    /// Searched for as the evaluator does (scope mode).
    Search(&'a Expr),
    /// A slot of the frame (slot mode).
    Local(usize),
    /// A scope entry from before the loop (slot mode).
    Outer(usize),
}

enum FastStmt<'a> {
    /// `let` / `const` in a block (never exported, never re-using a slot). `slot` in slot
    /// mode, else the value is pushed onto the scope.
    Let {
        stmt: &'a Stmt,
        name: &'a Ident,
        access: AccessMode,
        value: FastExpr<'a>,
        slot: Option<usize>,
        pos: Position,
    },
    /// `var = value` or `var op= value`.
    Assign {
        op: &'a OpAssignment,
        lhs: &'a Expr,
        var: Var<'a>,
        value: FastExpr<'a>,
        pos: Position,
    },
    /// `if` (slot mode): the blocks' slots are cleared when each ends.
    If(Box<FastIf<'a>>),
    /// `break` / `continue`, with an optional value (slot mode).
    Break(bool, Option<FastExpr<'a>>, Position),
    /// `return` or `throw` (slot mode).
    Return(bool, Option<FastExpr<'a>>, Position),
    /// An expression statement.
    Expr(FastExpr<'a>, Position),
    /// A function-call statement.
    Call(Box<FastCall<'a>>),
    /// Anything else, run by the evaluator (scope mode).
    Slow(&'a Stmt),
}

struct FastIf<'a> {
    cond: FastExpr<'a>,
    cond_pos: Position,
    then: (Vec<FastStmt<'a>>, Range<usize>),
    other: (Vec<FastStmt<'a>>, Range<usize>),
    pos: Position,
}

enum FastExpr<'a> {
    Const(Dynamic, Position),
    Var(Var<'a>, Position),
    Array(Vec<FastExpr<'a>>, Position),
    /// A binary operator: the operands, the whole expression, the call and the operator.
    Binary(Box<(FastExpr<'a>, FastExpr<'a>)>, &'a Expr, &'a FnCallExpr, &'a Token),
    Call(Box<FastCall<'a>>),
    Method(Box<FastMethod<'a>>),
    Index(Box<FastIndex<'a>>),
    /// Anything else, run by the evaluator (scope mode).
    Slow(&'a Expr),
}

/// `lhs[index]`, read (not chained further, not `?[`).
struct FastIndex<'a> {
    lhs: IndexLhs<'a>,
    index: FastExpr<'a>,
    /// The index is a literal (which the evaluator takes without counting an operation).
    literal: bool,
    /// The positions of the whole expression and of the index (where the evaluator counts
    /// their operations), where the index starts and of its operator.
    pos: Position,
    count_pos: Position,
    index_pos: Position,
    op_pos: Position,
}

/// The `[index]` of `variable.method(args)[index]`, evaluated after the arguments and
/// before the call, as the evaluator does.
struct MethodIndex<'a> {
    index: FastExpr<'a>,
    /// Where the evaluator counts the `[..]` chain and the index, where the index starts,
    /// and the position of `[`.
    chain_pos: Position,
    count_pos: Position,
    index_pos: Position,
    op_pos: Position,
}

enum IndexLhs<'a> {
    /// A variable, indexed in place.
    Var(Var<'a>, Position),
    /// Any other expression, indexed as a temporary value.
    Value(FastExpr<'a>),
}

impl FastExpr<'_> {
    /// The expression's position, as the evaluator reports it.
    fn position(&self) -> Position {
        match self {
            Self::Const(_, pos) | Self::Var(_, pos) | Self::Array(_, pos) => *pos,
            Self::Binary(_, expr, ..) | Self::Slow(expr) => expr.position(),
            Self::Call(call) => call.pos,
            Self::Method(method) => method.dot_pos,
            Self::Index(index) => index.pos,
        }
    }
}

/// A function call site.
struct FastCall<'a> {
    call: &'a FnCallExpr,
    pos: Position,
    /// The arguments after the first when the first is a variable (passed by reference,
    /// as the evaluator does), else all of them.
    args: Vec<FastExpr<'a>>,
    first_var: Option<(Var<'a>, Position)>,
    /// The arguments (a bit each) that may be passed in place to a native that borrows
    /// them: see [`in_place`].
    refs: u32,
    cached: Option<Cached>,
}

/// A `variable.method(args)` call site, or `variable.method(args)[index]`.
struct FastMethod<'a> {
    call: &'a FnCallExpr,
    var: Var<'a>,
    var_pos: Position,
    args: Vec<FastExpr<'a>>,
    /// The position of the `.` expression (where the evaluator counts an operation for
    /// it), and of the call.
    dot_pos: Position,
    pos: Position,
    index: Option<Box<MethodIndex<'a>>>,
    /// The arguments (a bit each) that may be passed in place: see [`in_place`].
    refs: u32,
    cached: Option<Cached>,
}

/// The native function a call site resolved to.
struct Cached {
    types: FnArgsVec<TypeId>,
    imports: usize,
    entry: FnResolutionCacheEntry,
    /// The function only reads its arguments after the first
    /// ([`RhaiFunc::borrows_args`][crate::func::RhaiFunc::borrows_args]).
    borrows: bool,
    /// The function leaves its first argument alone too.
    pure: bool,
}

/// The arguments (a bit each, up to 32) that a native which only reads its arguments may
/// be given in place rather than as copies: literals, and variables of the frame or from
/// outside the loop that neither another argument nor `first` (the call's by-reference
/// first argument) mentions. Evaluating the other arguments then cannot change them, so
/// reading them in place after all arguments are evaluated reads what the evaluator
/// would have copied in turn. `exprs` are the arguments' expressions, `args` their
/// pre-resolved forms.
fn in_place(first: Option<&Expr>, exprs: &[Expr], args: &[FastExpr]) -> u32 {
    let mut refs = 0;
    for (k, arg) in args.iter().enumerate().take(32) {
        let ok = match (arg, &exprs[k]) {
            (FastExpr::Const(..), _) => true,
            (FastExpr::Var(Var::Local(..) | Var::Outer(..), _), Expr::Variable(v, ..)) => {
                let others = exprs.iter().enumerate().filter(|&(j, _)| j != k).map(|(_, e)| e);
                !first.into_iter().chain(others).any(|e| mentions(e, v.1.as_str()))
            }
            _ => false,
        };
        refs |= u32::from(ok) << k;
    }
    refs
}

/// Whether `expr` names the variable `name` anywhere (or holds custom syntax, which may
/// reach any variable).
fn mentions(expr: &Expr, name: &str) -> bool {
    !expr.walk(&mut Vec::new(), &mut |path: &[ASTNode]| match path.last() {
        Some(ASTNode::Expr(Expr::Variable(v, ..))) => v.1.as_str() != name,
        #[cfg(not(feature = "no_custom_syntax"))]
        Some(ASTNode::Expr(Expr::Custom(..))) => false,
        _ => true,
    })
}

/// The bits set in `refs`.
fn bits(mut refs: u32) -> impl Iterator<Item = usize> {
    std::iter::from_fn(move || {
        let k = refs.trailing_zeros();
        refs &= refs.wrapping_sub(1);
        (k < 32).then_some(k as usize)
    })
}

/// Whether any of `args` could be locked (only shared values can, and containers that may
/// hold them): the check of `ensure_no_data_race` is only made then.
#[cfg(not(feature = "no_closure"))]
#[inline(always)]
fn may_be_locked(args: &[&mut Dynamic]) -> bool {
    args.iter().any(|a| match a.0 {
        #[cfg(not(feature = "no_index"))]
        Union::Array(..) => true,
        #[cfg(not(feature = "no_object"))]
        Union::Map(..) => true,
        Union::FnPtr(..) | Union::Shared(..) => true,
        _ => false,
    })
}

/// The type of an argument, with the common cases inline.
#[inline(always)]
fn arg_type(value: &Dynamic) -> TypeId {
    match value.0 {
        Union::Int(..) => TypeId::of::<crate::INT>(),
        Union::Str(..) => TypeId::of::<crate::ImmutableString>(),
        #[cfg(not(feature = "no_index"))]
        Union::Blob(..) => TypeId::of::<crate::Blob>(),
        #[cfg(not(feature = "no_index"))]
        Union::Array(..) => TypeId::of::<crate::Array>(),
        _ => value.type_id(),
    }
}

/// Replace the arguments of `args` passed in place (`refs`, counted from `skip`) by copies
/// kept in `copies`, for a function that may take its arguments.
fn copy_in_place<'x>(args: &mut [&'x mut Dynamic], refs: u32, skip: usize, copies: &'x mut Vec<Dynamic>) {
    if refs == 0 {
        return;
    }
    copies.extend(bits(refs).map(|k| args[k + skip].clone()));
    for (k, copy) in bits(refs).zip(copies.iter_mut()) {
        args[k + skip] = copy;
    }
}

impl Cached {
    fn matches(&self, imports: usize, types: impl Iterator<Item = TypeId>) -> bool {
        self.imports == imports && self.types.iter().copied().eq(types)
    }
}

/// Builds a [`FastBlock`]; in slot mode, any statement or expression it does not know
/// fails the build (`ok` turns false).
struct Builder<'a, 's> {
    /// The scope as the body sees it (slot mode), to find outer variables in.
    scope: Option<&'s Scope<'s>>,
    /// Variables of the body visible at this point, with their slots.
    locals: Vec<(&'a str, usize)>,
    slots: usize,
    ok: bool,
    /// Operators are called as functions (fast operators off): binary operators are left
    /// to the evaluator.
    slow_operators: bool,
}

impl<'a> Builder<'a, '_> {
    fn slot_mode(&self) -> bool {
        self.scope.is_some()
    }

    /// The statements of a block, with the range of slots its own variables use.
    fn block(&mut self, stmts: &'a [Stmt]) -> (Vec<FastStmt<'a>>, Range<usize>) {
        let (visible, first) = (self.locals.len(), self.slots);
        let stmts = stmts.iter().map(|s| self.stmt(s)).collect();
        self.locals.truncate(visible);
        (stmts, first..self.slots)
    }

    fn slow_stmt(&mut self, stmt: &'a Stmt) -> FastStmt<'a> {
        self.ok &= !self.slot_mode();
        FastStmt::Slow(stmt)
    }

    fn stmt(&mut self, stmt: &'a Stmt) -> FastStmt<'a> {
        match stmt {
            Stmt::Var(x, options, pos) if x.2.is_none() && !options.contains(ASTFlags::EXPORTED) => {
                let access = if options.contains(ASTFlags::CONSTANT) {
                    AccessMode::ReadOnly
                } else {
                    AccessMode::ReadWrite
                };
                let value = self.expr(&x.1);
                let slot = self.slot_mode().then(|| {
                    self.locals.push((x.0.as_str(), self.slots));
                    self.slots += 1;
                    self.slots - 1
                });
                FastStmt::Let {
                    stmt,
                    name: &x.0,
                    access,
                    value,
                    slot,
                    pos: *pos,
                }
            }
            Stmt::Assignment(x) => {
                let (op, BinaryExpr { lhs, rhs }) = &**x;
                match (lhs, self.var(lhs)) {
                    (Expr::Variable(..), Some(var)) => FastStmt::Assign {
                        op,
                        lhs,
                        var,
                        value: self.expr(rhs),
                        pos: stmt.position(),
                    },
                    _ => self.slow_stmt(stmt),
                }
            }
            Stmt::If(x, pos) if self.slot_mode() => {
                let cond = self.expr(&x.expr);
                Self::boxed_if(cond, x.expr.position(), self.block(x.body.statements()), self.block(x.branch.statements()), *pos)
            }
            Stmt::BreakLoop(value, options, pos) if self.slot_mode() => {
                let value = value.as_deref().map(|e| self.expr(e));
                FastStmt::Break(options.contains(ASTFlags::BREAK), value, *pos)
            }
            Stmt::Return(value, options, pos) if self.slot_mode() => {
                let value = value.as_deref().map(|e| self.expr(e));
                FastStmt::Return(options.contains(ASTFlags::BREAK), value, *pos)
            }
            Stmt::Expr(expr) => match self.expr(expr) {
                FastExpr::Slow(..) => self.slow_stmt(stmt),
                fast => FastStmt::Expr(fast, stmt.position()),
            },
            Stmt::FnCall(x, pos) => match self.call(x, *pos) {
                Some(call) => FastStmt::Call(call),
                None => self.slow_stmt(stmt),
            },
            _ => self.slow_stmt(stmt),
        }
    }

    fn boxed_if(
        cond: FastExpr<'a>,
        cond_pos: Position,
        then: (Vec<FastStmt<'a>>, Range<usize>),
        other: (Vec<FastStmt<'a>>, Range<usize>),
        pos: Position,
    ) -> FastStmt<'a> {
        FastStmt::If(Box::new(FastIf {
            cond,
            cond_pos,
            then,
            other,
            pos,
        }))
    }

    /// Where the variable `expr` is, or `None` (slot mode: not a plain variable found).
    fn var(&mut self, expr: &'a Expr) -> Option<Var<'a>> {
        let Expr::Variable(v, ..) = expr else {
            return None;
        };
        let Some(scope) = self.scope else {
            return Some(Var::Search(expr));
        };
        #[cfg(not(feature = "no_module"))]
        if !v.2.is_empty() {
            return None;
        }
        let name = v.1.as_str();
        if let Some(&(_, slot)) = self.locals.iter().rev().find(|(n, _)| *n == name) {
            return Some(Var::Local(slot));
        }
        scope.search(name).map(Var::Outer)
    }

    /// An argument of a call or an operator: a literal (constant arrays, maps, ranges and
    /// interpolated strings included) is taken whole, with one operation, as
    /// [`get_arg_value`][Engine::get_arg_value] does.
    fn arg(&mut self, expr: &'a Expr) -> FastExpr<'a> {
        match expr.get_literal_value(None) {
            Some(value) => FastExpr::Const(value, expr.start_position()),
            None => self.expr(expr),
        }
    }

    fn slow_expr(&mut self, expr: &'a Expr) -> FastExpr<'a> {
        self.ok &= !self.slot_mode();
        FastExpr::Slow(expr)
    }

    fn expr(&mut self, expr: &'a Expr) -> FastExpr<'a> {
        match expr {
            Expr::DynamicConstant(..)
            | Expr::IntegerConstant(..)
            | Expr::CharConstant(..)
            | Expr::StringConstant(..)
            | Expr::BoolConstant(..)
            | Expr::Unit(..) => FastExpr::Const(expr.get_literal_value(None).unwrap_or(Dynamic::UNIT), expr.position()),
            #[cfg(not(feature = "no_float"))]
            Expr::FloatConstant(..) => FastExpr::Const(expr.get_literal_value(None).unwrap_or(Dynamic::UNIT), expr.position()),
            Expr::Variable(..) => match self.var(expr) {
                Some(var) => FastExpr::Var(var, expr.position()),
                None => self.slow_expr(expr),
            },
            #[cfg(not(feature = "no_index"))]
            Expr::Array(items, pos) => FastExpr::Array(items.iter().map(|e| self.expr(e)).collect(), *pos),
            Expr::FnCall(x, ..) if x.args.len() == 2 && x.op_token.is_some() && self.slow_operators => {
                self.slow_expr(expr)
            }
            Expr::FnCall(x, ..) if x.args.len() == 2 && x.op_token.is_some() => {
                let operands = (self.arg(&x.args[0]), self.arg(&x.args[1]));
                match x.op_token {
                    Some(ref op) => FastExpr::Binary(Box::new(operands), expr, x, op),
                    None => self.slow_expr(expr),
                }
            }
            Expr::FnCall(x, pos) => match self.call(x, *pos) {
                Some(call) => FastExpr::Call(call),
                None => self.slow_expr(expr),
            },
            #[cfg(not(feature = "no_object"))]
            Expr::Dot(x, options, _) if !options.intersects(ASTFlags::NEGATED) => {
                match (&x.lhs, &x.rhs) {
                    (lhs @ Expr::Variable(..), Expr::MethodCall(call, pos)) => {
                        self.method(lhs, call, *pos, expr.position(), None).unwrap_or_else(|| self.slow_expr(expr))
                    }
                    // `variable.method(args)[index]`.
                    #[cfg(not(feature = "no_index"))]
                    (lhs @ Expr::Variable(..), rhs @ Expr::Index(y, index_options, op_pos))
                        if !index_options.intersects(ASTFlags::NEGATED)
                            && !matches!(y.rhs, Expr::Dot(..) | Expr::Index(..)) =>
                    {
                        let Expr::MethodCall(call, pos) = &y.lhs else {
                            return self.slow_expr(expr);
                        };
                        let index = Box::new(MethodIndex {
                            index: self.expr(&y.rhs),
                            chain_pos: rhs.position(),
                            count_pos: y.rhs.position(),
                            index_pos: y.rhs.start_position(),
                            op_pos: *op_pos,
                        });
                        self.method(lhs, call, *pos, expr.position(), Some(index))
                            .unwrap_or_else(|| self.slow_expr(expr))
                    }
                    _ => self.slow_expr(expr),
                }
            }
            #[cfg(not(feature = "no_index"))]
            Expr::Index(x, options, pos)
                if !options.intersects(ASTFlags::NEGATED) && !matches!(x.rhs, Expr::Dot(..) | Expr::Index(..)) =>
            {
                let lhs = match &x.lhs {
                    lhs @ Expr::Variable(.., var_pos) => match self.var(lhs) {
                        Some(var) => IndexLhs::Var(var, *var_pos),
                        None => return self.slow_expr(expr),
                    },
                    Expr::ThisPtr(..) => return self.slow_expr(expr),
                    lhs => IndexLhs::Value(self.expr(lhs)),
                };
                FastExpr::Index(Box::new(FastIndex {
                    lhs,
                    literal: x.rhs.get_literal_value(None).is_some(),
                    index: self.expr(&x.rhs),
                    pos: expr.position(),
                    count_pos: x.rhs.position(),
                    index_pos: x.rhs.start_position(),
                    op_pos: *pos,
                }))
            }
            _ => self.slow_expr(expr),
        }
    }

    /// `lhs.call(args)` on the variable `lhs`, at `dot_pos`, maybe followed by `[index]`.
    fn method(
        &mut self,
        lhs: &'a Expr,
        call: &'a FnCallExpr,
        pos: Position,
        dot_pos: Position,
        index: Option<Box<MethodIndex<'a>>>,
    ) -> Option<FastExpr<'a>> {
        let var = self.var(lhs)?;
        let args: Vec<_> = call.args.iter().map(|e| self.arg(e)).collect();
        Some(FastExpr::Method(Box::new(FastMethod {
            call,
            var,
            var_pos: lhs.position(),
            refs: in_place(Some(lhs), &call.args, &args),
            args,
            dot_pos,
            pos,
            index,
            cached: None,
        })))
    }

    fn call(&mut self, call: &'a FnCallExpr, pos: Position) -> Option<Box<FastCall<'a>>> {
        let special = matches!(
            call.name.as_str(),
            KEYWORD_FN_PTR_CALL | KEYWORD_FN_PTR | KEYWORD_FN_PTR_CURRY | KEYWORD_IS_DEF_VAR | KEYWORD_EVAL
        );
        #[cfg(not(feature = "no_closure"))]
        let special = special || call.name == crate::engine::KEYWORD_IS_SHARED;
        if special || call.op_token.is_some() || call.capture_parent_scope {
            return None;
        }
        let (first, rest) = match call.args.split_first() {
            Some((first @ Expr::Variable(..), rest)) => (Some(first), rest),
            Some((Expr::ThisPtr(..), _)) => return None,
            _ => (None, &call.args[..]),
        };
        let first_var = match first {
            Some(first) => Some((self.var(first)?, first.position())),
            None => None,
        };
        let args: Vec<_> = rest.iter().map(|e| self.arg(e)).collect();
        Some(Box::new(FastCall {
            call,
            pos,
            refs: in_place(first, rest, &args),
            args,
            first_var,
            cached: None,
        }))
    }
}

impl<'a> FastBlock<'a> {
    /// The pre-resolved form of `stmts`, or `None` when nothing in it would run faster.
    fn new(engine: &Engine, global: &GlobalRuntimeState, scope: &Scope, body: &LoopBody<'a>) -> Option<Self> {
        let stmts = body.stmts;
        // An import changes resolution for the statements after it: leave such blocks alone.
        #[cfg(not(feature = "no_module"))]
        if stmts.iter().any(|s| matches!(s, Stmt::Import(..))) {
            return None;
        }
        // Slot mode finds variables by name once; a variable resolver or a scope changed
        // by `eval` would have them found afresh every time. It also skips the checks a
        // definition filter, a ban on shadowing or a limit on the number of variables make
        // on the scope (the frame's variables are not on it, so a script function called
        // from the body would count fewer).
        let plain = engine.resolve_var.is_none()
            && engine.def_var_filter.is_none()
            && engine.allow_shadowing()
            && unlimited_variables(engine);
        if plain && !global.always_search_scope {
            let mut slots = Builder {
                scope: Some(scope),
                locals: Vec::new(),
                slots: 0,
                ok: true,
                slow_operators: !engine.fast_operators(),
            };
            let cond = body.cond.map(|e| slots.expr(e));
            let (stmts, _) = slots.block(stmts);
            if slots.ok {
                return Some(Self {
                    stmts,
                    cond,
                    frame: vec![Dynamic::UNIT; slots.slots],
                    slot_mode: true,
                });
            }
        }
        let mut builder = Builder {
            scope: None,
            locals: Vec::new(),
            slots: 0,
            ok: true,
            slow_operators: !engine.fast_operators(),
        };
        let cond = body.cond.map(|e| builder.expr(e));
        let (stmts, _) = builder.block(stmts);
        stmts.iter().any(|s| !matches!(s, FastStmt::Slow(..))).then_some(Self {
            stmts,
            cond,
            frame: Vec::new(),
            slot_mode: false,
        })
    }
}

/// Whether the engine sets no limit on the number of variables.
#[inline(always)]
const fn unlimited_variables(engine: &Engine) -> bool {
    #[cfg(not(feature = "unchecked"))]
    return engine.max_variables() == usize::MAX;
    #[cfg(feature = "unchecked")]
    return true;
}

/// `value` without its sharing, as [`Dynamic::flatten`] (checked inline first: most
/// values are not shared).
#[inline(always)]
fn flat(value: Dynamic) -> Dynamic {
    if value.is_shared() {
        value.flatten()
    } else {
        value
    }
}

/// Whether dropping `value` does nothing.
#[inline(always)]
const fn is_plain(value: &Dynamic) -> bool {
    match value.0 {
        Union::Unit(..) | Union::Bool(..) | Union::Char(..) | Union::Int(..) => true,
        #[cfg(not(feature = "no_float"))]
        Union::Float(..) => true,
        _ => false,
    }
}

/// `*place = value`, without a call to drop a plain old value.
#[inline(always)]
pub(crate) fn store(place: &mut Dynamic, value: Dynamic) {
    if is_plain(place) {
        // SAFETY: the old value has nothing to drop.
        unsafe { std::ptr::write(place, value) };
    } else {
        *place = value;
    }
}

/// Clear a slot of the frame at the end of its block: a plain value is left (the slot is
/// written before it is read again), an array of plain values is dropped without a call
/// per item.
#[inline(always)]
fn clear(slot: &mut Dynamic) {
    if is_plain(slot) {
        return;
    }
    #[cfg(not(feature = "no_index"))]
    if let Union::Array(ref mut items, ..) = slot.0 {
        if items.iter().all(is_plain) {
            // SAFETY: the items have nothing to drop.
            unsafe { items.set_len(0) };
        }
    }
    *slot = Dynamic::UNIT;
}

/// Where a fast block's variables are: the scope, and the frame of slot mode.
struct Vars<'f, 's> {
    scope: &'f mut Scope<'s>,
    frame: &'f mut [Dynamic],
}

impl Vars<'_, '_> {
    /// Raw pointers to the frame's slots and the scope's values. A call site hands out
    /// references to several distinct variables through them at once; nothing else
    /// reaches the variables while those references live (in scope mode, where variables
    /// are searched for by name, none is handed out this way).
    fn ptrs(&mut self) -> VarPtrs {
        VarPtrs {
            frame: self.frame.as_mut_ptr(),
            scope: self.scope.values_mut_ptr(),
        }
    }
}

/// See [`Vars::ptrs`].
#[derive(Clone, Copy)]
struct VarPtrs {
    frame: *mut Dynamic,
    scope: *mut Dynamic,
}

impl VarPtrs {
    /// The variable `var` (of slot mode).
    #[inline(always)]
    fn var(self, var: Var) -> *mut Dynamic {
        match var {
            Var::Local(slot) => self.frame.wrapping_add(slot),
            Var::Outer(index) => self.scope.wrapping_add(index),
            Var::Search(..) => unreachable!("only variables of slot mode are reached in place"),
        }
    }

    /// What an argument passed in place stands for: its literal, or its variable.
    #[inline(always)]
    fn arg(self, expr: &mut FastExpr) -> *mut Dynamic {
        match expr {
            FastExpr::Const(value, _) => value,
            FastExpr::Var(Var::Local(slot), _) => self.frame.wrapping_add(*slot),
            FastExpr::Var(Var::Outer(index), _) => self.scope.wrapping_add(*index),
            _ => unreachable!("only literals and variables of slot mode are passed in place"),
        }
    }

    /// Push the arguments `arg_exprs` of a call onto `args`: those in `refs` in place,
    /// the others from `values`, in turn.
    ///
    /// # Safety
    ///
    /// As [`Vars::ptrs`] says, with no variable passed in place twice ([`in_place`]).
    unsafe fn push_args<'x>(
        self,
        arg_exprs: &'x mut [FastExpr],
        refs: u32,
        mut values: impl Iterator<Item = &'x mut Dynamic>,
        args: &mut FnArgsVec<&'x mut Dynamic>,
    ) {
        for (k, expr) in arg_exprs.iter_mut().enumerate() {
            if refs & (1 << k) == 0 {
                args.extend(values.next());
            } else {
                args.push(unsafe { &mut *self.arg(expr) });
            }
        }
    }
}

impl Engine {
    /// Run one iteration of a loop body.
    pub(crate) fn eval_loop_body(
        &self,
        global: &mut GlobalRuntimeState,
        caches: &mut Caches,
        scope: &mut Scope,
        this_ptr: Option<&mut Dynamic>,
        body: &mut LoopBody,
    ) -> RhaiResult {
        match body.state {
            State::Fast(ref mut block) => self.eval_fast_block(global, caches, scope, this_ptr, block),
            State::Slow => self.eval_stmt_block(global, caches, scope, this_ptr, body.stmts, true),
            State::Fresh => {
                Self::build_loop_body(self, global, scope, body);
                self.eval_stmt_block(global, caches, scope, this_ptr, body.stmts, true)
            }
        }
    }

    /// Build the pre-resolved form of a loop body, out of line.
    #[inline(never)]
    fn build_loop_body(&self, global: &GlobalRuntimeState, scope: &Scope, body: &mut LoopBody) {
        body.state = FastBlock::new(self, global, scope, body).map_or(State::Slow, State::Fast);
    }

    /// Evaluate the condition `expr` of a loop with this body.
    pub(crate) fn eval_loop_cond(
        &self,
        global: &mut GlobalRuntimeState,
        caches: &mut Caches,
        scope: &mut Scope,
        this_ptr: Option<&mut Dynamic>,
        body: &mut LoopBody,
        expr: &Expr,
    ) -> RhaiResultOf<bool> {
        let value = match body.state {
            State::Fast(FastBlock {
                cond: Some(ref mut cond),
                ref mut frame,
                ..
            }) => self.eval_fast_expr(global, caches, &mut Vars { scope, frame }, this_ptr, cond)?,
            _ => self.eval_expr(global, caches, scope, this_ptr, expr)?,
        };
        value
            .as_bool()
            .map_err(|typ| self.make_type_mismatch_err::<bool>(typ, expr.position()))
    }

    /// Run a loop body: what [`eval_stmt_block`][Engine::eval_stmt_block] does with
    /// `restore_orig_state`, for a [`FastBlock`].
    #[inline(never)]
    fn eval_fast_block(
        &self,
        global: &mut GlobalRuntimeState,
        caches: &mut Caches,
        scope: &mut Scope,
        this_ptr: Option<&mut Dynamic>,
        block: &mut FastBlock,
    ) -> RhaiResult {
        let FastBlock {
            stmts,
            frame,
            slot_mode,
            ..
        } = block;

        if *slot_mode {
            // The frame is cleared on every exit, as the scope would be rewound.
            let vars = &mut Vars { scope, frame };
            let result = self.eval_fast_stmts(global, caches, vars, this_ptr, stmts);
            vars.frame.iter_mut().for_each(clear);
            return result;
        }
        self.eval_fast_block_in_scope(global, caches, scope, this_ptr, stmts)
    }

    /// Run a loop body in scope mode: its variables are pushed onto the scope, which is
    /// rewound at its end. Out of line: slot mode does not pay for this frame.
    #[inline(never)]
    fn eval_fast_block_in_scope(
        &self,
        global: &mut GlobalRuntimeState,
        caches: &mut Caches,
        scope: &mut Scope,
        this_ptr: Option<&mut Dynamic>,
        stmts: &mut [FastStmt],
    ) -> RhaiResult {
        defer! { scope => rewind; let orig_scope_len = scope.len(); }

        let orig_always_search_scope = global.always_search_scope;
        #[cfg(not(feature = "no_module"))]
        let orig_imports_len = global.num_imports();
        global.scope_level += 1;
        defer! { global => move |g| {
            g.scope_level -= 1;
            #[cfg(not(feature = "no_module"))]
            g.truncate_imports(orig_imports_len);
            g.always_search_scope = orig_always_search_scope;
        }}

        if caches.fn_resolution_caches_len() == 0 {
            caches.push_fn_resolution_cache();
        }
        defer! {
            caches => rewind_fn_resolution_caches;
            let orig_fn_resolution_caches_len = caches.fn_resolution_caches_len();
        }

        let vars = &mut Vars { scope, frame: &mut [] };
        self.eval_fast_stmts(global, caches, vars, this_ptr, stmts)
    }

    fn eval_fast_stmts(
        &self,
        global: &mut GlobalRuntimeState,
        caches: &mut Caches,
        vars: &mut Vars,
        mut this_ptr: Option<&mut Dynamic>,
        stmts: &mut [FastStmt],
    ) -> RhaiResult {
        for stmt in stmts {
            let this_ptr = this_ptr.as_deref_mut();
            match stmt {
                FastStmt::Let {
                    stmt,
                    name,
                    access,
                    value,
                    slot,
                    pos,
                } => {
                    // (Slot mode is never built for these.)
                    if !self.allow_shadowing() || self.def_var_filter.is_some() {
                        let _ = self.eval_stmt(global, caches, vars.scope, this_ptr, stmt, true)?;
                        continue;
                    }
                    self.track_operation(global, *pos)?;
                    // (Slot mode is only built without a limit.)
                    #[cfg(not(feature = "unchecked"))]
                    if vars.scope.len() >= self.max_variables() {
                        return Err(ERR::ErrorTooManyVariables(*pos).into());
                    }
                    let value = self.eval_fast_expr(global, caches, vars, this_ptr, value)?;
                    match slot {
                        Some(slot) => {
                            // Finished in place: moving the value again right after its
                            // access mode or sharing changed would stall on the store.
                            let place = &mut vars.frame[*slot];
                            store(place, value);
                            if place.is_shared() || place.is_string() {
                                *place = self.intern_string(flat(std::mem::take(place)));
                            }
                            place.set_access_mode(*access);
                        }
                        None => {
                            let value = self.intern_string(flat(value));
                            vars.scope.push_entry(name.name.clone(), *access, value);
                        }
                    }
                }
                FastStmt::Assign {
                    op,
                    lhs,
                    var,
                    value,
                    pos,
                } => {
                    self.track_operation(global, *pos)?;
                    let mut this_ptr = this_ptr;
                    let value = flat(self.eval_fast_expr(global, caches, vars, this_ptr.as_deref_mut(), value)?);
                    self.track_operation(global, lhs.position())?;
                    let mut target = self.fast_target(global, caches, vars, this_ptr, *var)?;
                    #[cfg(not(feature = "no_closure"))]
                    let is_temp_result = !target.is_ref() && !target.is_shared();
                    #[cfg(feature = "no_closure")]
                    let is_temp_result = !target.is_ref();
                    if is_temp_result {
                        let name = lhs.get_variable_name(false).unwrap_or_default();
                        return Err(ERR::ErrorAssignmentToConstant(name.to_string(), lhs.position()).into());
                    }
                    self.eval_op_assignment(global, caches, op, lhs, &mut target, value)?;
                }
                FastStmt::If(x) => {
                    self.track_operation(global, x.pos)?;
                    let FastIf {
                        cond,
                        cond_pos,
                        then,
                        other,
                        ..
                    } = &mut **x;
                    let mut this_ptr = this_ptr;
                    let guard = self
                        .eval_fast_expr(global, caches, vars, this_ptr.as_deref_mut(), cond)?
                        .as_bool()
                        .map_err(|typ| self.make_type_mismatch_err::<bool>(typ, *cond_pos))?;
                    let (stmts, slots) = if guard { then } else { other };
                    if !stmts.is_empty() {
                        let result = self.eval_fast_stmts(global, caches, vars, this_ptr, stmts);
                        vars.frame[slots.clone()].iter_mut().for_each(clear);
                        let _ = result?;
                    }
                }
                FastStmt::Break(is_break, value, pos) => {
                    self.track_operation(global, *pos)?;
                    let value = match value {
                        Some(value) => self.eval_fast_expr(global, caches, vars, this_ptr, value)?,
                        None => Dynamic::UNIT,
                    };
                    return Err(ERR::LoopBreak(*is_break, value, *pos).into());
                }
                FastStmt::Return(is_throw, value, pos) => {
                    self.track_operation(global, *pos)?;
                    let value = match value {
                        Some(value) => flat(self.eval_fast_expr(global, caches, vars, this_ptr, value)?),
                        None => Dynamic::UNIT,
                    };
                    return Err(if *is_throw {
                        ERR::ErrorRuntime(value, *pos)
                    } else {
                        ERR::Return(value, *pos)
                    }
                    .into());
                }
                FastStmt::Expr(expr, pos) => {
                    self.track_operation(global, *pos)?;
                    let _ = self.eval_fast_expr(global, caches, vars, this_ptr, expr)?;
                }
                FastStmt::Call(call) => {
                    self.track_operation(global, call.pos)?;
                    let _ = self.eval_fast_call(global, caches, vars, this_ptr, call)?;
                }
                FastStmt::Slow(stmt) => {
                    let _ = self.eval_stmt(global, caches, vars.scope, this_ptr, stmt, true)?;
                }
            }
        }
        Ok(Dynamic::UNIT)
    }

    /// The variable `var`, as [`search_namespace`][Engine::search_namespace] finds it.
    fn fast_target<'t>(
        &self,
        global: &mut GlobalRuntimeState,
        caches: &mut Caches,
        vars: &'t mut Vars,
        this_ptr: Option<&'t mut Dynamic>,
        var: Var,
    ) -> RhaiResultOf<Target<'t>> {
        match var {
            Var::Search(expr) => self.search_namespace(global, caches, vars.scope, this_ptr, expr),
            Var::Local(slot) => (&mut vars.frame[slot]).try_into(),
            Var::Outer(index) => vars.scope.get_mut_by_index(index).try_into(),
        }
    }

    /// Evaluate an expression as [`eval_expr`][Engine::eval_expr] does.
    fn eval_fast_expr(
        &self,
        global: &mut GlobalRuntimeState,
        caches: &mut Caches,
        vars: &mut Vars,
        this_ptr: Option<&mut Dynamic>,
        expr: &mut FastExpr,
    ) -> RhaiResult {
        match expr {
            FastExpr::Const(value, pos) => {
                self.track_operation(global, *pos)?;
                Ok(value.clone())
            }
            FastExpr::Var(var, pos) => {
                self.track_operation(global, *pos)?;
                match *var {
                    Var::Local(slot) => Ok(vars.frame[slot].clone()),
                    Var::Outer(index) => Ok(vars.scope.get_mut_by_index(index).clone()),
                    Var::Search(expr) => self
                        .search_namespace(global, caches, vars.scope, this_ptr, expr)
                        .map(Target::take_or_clone),
                }
            }
            FastExpr::Array(items, pos) => self.eval_fast_array(global, caches, vars, this_ptr, items, *pos),
            FastExpr::Binary(operands, expr, call, op) => {
                self.eval_fast_binary(global, caches, vars, this_ptr, operands, expr, call, op)
            }
            FastExpr::Call(call) => {
                self.track_operation(global, call.pos)?;
                self.eval_fast_call(global, caches, vars, this_ptr, call)
            }
            FastExpr::Method(method) => self.eval_fast_method(global, caches, vars, this_ptr, method),
            FastExpr::Index(x) => self.eval_fast_index(global, caches, vars, this_ptr, x),
            FastExpr::Slow(expr) => self.eval_expr(global, caches, vars.scope, this_ptr, expr),
        }
    }

    /// An array literal, out of line from [`eval_fast_expr`][Engine::eval_fast_expr].
    #[inline(never)]
    fn eval_fast_array(
        &self,
        global: &mut GlobalRuntimeState,
        caches: &mut Caches,
        vars: &mut Vars,
        mut this_ptr: Option<&mut Dynamic>,
        items: &mut [FastExpr],
        pos: Position,
    ) -> RhaiResult {
        self.track_operation(global, pos)?;
        let mut array = crate::Array::with_capacity(items.len());
        #[cfg(not(feature = "unchecked"))]
        let mut total_data_sizes = (0, 0, 0);
        for item in items {
            let value = flat(self.eval_fast_expr(global, caches, vars, this_ptr.as_deref_mut(), item)?);
            #[cfg(not(feature = "unchecked"))]
            self.check_array_item_size(&mut total_data_sizes, &value, || item.position())?;
            array.push(value);
        }
        Ok(Dynamic::from_array(array))
    }

    /// A binary operator, out of line from [`eval_fast_expr`][Engine::eval_fast_expr].
    #[inline(never)]
    #[allow(clippy::too_many_arguments)]
    fn eval_fast_binary(
        &self,
        global: &mut GlobalRuntimeState,
        caches: &mut Caches,
        vars: &mut Vars,
        mut this_ptr: Option<&mut Dynamic>,
        operands: &mut (FastExpr, FastExpr),
        expr: &Expr,
        call: &FnCallExpr,
        op: &Token,
    ) -> RhaiResult {
            let pos = expr.position();
            self.track_operation(global, pos)?;
            let (lhs, rhs) = operands;
            let mut lhs = flat(self.eval_fast_expr(global, caches, vars, this_ptr.as_deref_mut(), lhs)?);
            let mut rhs = flat(self.eval_fast_expr(global, caches, vars, this_ptr, rhs)?);
            // The evaluator's fast-operator path: a built-in, else the general call.
            if !lhs.is_variant() && !rhs.is_variant() {
                if let Some((func, need_context)) = get_builtin_binary_op_fn(op, &lhs, &rhs) {
                    let context = need_context.then(|| (self, call.name.as_str(), None, &*global, pos).into());
                    return func(context, &mut [&mut lhs, &mut rhs]).map_err(|err| err.fill_position(pos));
                }
            }
            let operands = &mut [&mut lhs, &mut rhs];
            self.exec_fn_call(global, caches, None, &call.name, Some(op), call.hashes, operands, false, false, pos)
                .map(|(v, ..)| v)
        }

    /// Read `lhs[index]` as [`eval_dot_index_chain`][Engine::eval_dot_index_chain] does:
    /// the index first, then the indexed value.
    #[inline(never)]
    fn eval_fast_index(
        &self,
        global: &mut GlobalRuntimeState,
        caches: &mut Caches,
        vars: &mut Vars,
        mut this_ptr: Option<&mut Dynamic>,
        x: &mut FastIndex,
    ) -> RhaiResult {
        let FastIndex {
            lhs,
            index,
            literal,
            pos,
            count_pos,
            index_pos,
            op_pos,
        } = x;
        self.track_operation(global, *pos)?;
        let index = match index {
            FastExpr::Const(value, _) if *literal => value.clone(),
            index => {
                self.track_operation(global, *count_pos)?;
                flat(self.eval_fast_expr(global, caches, vars, this_ptr.as_deref_mut(), index)?)
            }
        };
        match lhs {
            IndexLhs::Var(var, var_pos) => {
                self.track_operation(global, *var_pos)?;
                let target = self.fast_target(global, caches, vars, None, *var)?;
                self.index_target(global, caches, &mut Scope::new(), this_ptr, target, index, *index_pos, *op_pos)
            }
            IndexLhs::Value(expr) => {
                let value = flat(self.eval_fast_expr(global, caches, vars, this_ptr.as_deref_mut(), expr)?);
                let target = Target::TempValue(value);
                self.index_target(global, caches, vars.scope, this_ptr, target, index, *index_pos, *op_pos)
            }
        }
    }

    /// `target[index]`, read.
    #[allow(clippy::too_many_arguments)]
    fn index_target(
        &self,
        global: &mut GlobalRuntimeState,
        caches: &mut Caches,
        scope: &mut Scope,
        this_ptr: Option<&mut Dynamic>,
        mut target: Target,
        mut index: Dynamic,
        index_pos: Position,
        op_pos: Position,
    ) -> RhaiResult {
        let obj = target.as_mut();
        #[cfg(not(feature = "no_closure"))]
        let mut guard;
        #[cfg(not(feature = "no_closure"))]
        let obj = if obj.is_shared() {
            guard = obj.write_lock::<Dynamic>().unwrap();
            &mut *guard
        } else {
            obj
        };
        self.get_indexed_mut(global, caches, scope, this_ptr, obj, &mut index, index_pos, op_pos, false, true)
            .map(Target::take_or_clone)
    }

    /// Evaluate the arguments `arg_exprs` of a call, in order, into `values`, except those
    /// in `refs` (literals and variables, see [`in_place`]), which are only counted, as
    /// the evaluator counts them, to be passed in place. Returns the arguments left in
    /// place: a shared variable is read (flattened) into `values` instead.
    #[allow(clippy::too_many_arguments)]
    fn eval_fast_args(
        &self,
        global: &mut GlobalRuntimeState,
        caches: &mut Caches,
        vars: &mut Vars,
        mut this_ptr: Option<&mut Dynamic>,
        arg_exprs: &mut [FastExpr],
        refs: u32,
        values: &mut FnArgsVec<Dynamic>,
    ) -> RhaiResultOf<u32> {
        let mut left = refs;
        for (k, expr) in arg_exprs.iter_mut().enumerate() {
            if refs & (1 << k) != 0 {
                let (value, pos) = match expr {
                    FastExpr::Const(value, pos) => (&*value, *pos),
                    FastExpr::Var(Var::Local(slot), pos) => (&vars.frame[*slot], *pos),
                    FastExpr::Var(Var::Outer(index), pos) => (&*vars.scope.get_mut_by_index(*index), *pos),
                    _ => unreachable!("only literals and variables are passed in place"),
                };
                self.track_operation(global, pos)?;
                if value.is_shared() {
                    values.push(value.flatten_clone());
                    left &= !(1 << k);
                }
                continue;
            }
            values.push(flat(self.eval_fast_expr(global, caches, vars, this_ptr.as_deref_mut(), expr)?));
        }
        Ok(left)
    }

    /// Whether the arguments `arg_exprs`, all literals and variables passed in place, are
    /// none of them shared and of the types `types` a call site was resolved for.
    #[inline(always)]
    fn fit_in_place(ptrs: VarPtrs, arg_exprs: &mut [FastExpr], types: &[TypeId]) -> bool {
        types.len() == arg_exprs.len()
            && arg_exprs.iter_mut().zip(types).all(|(expr, typ)| {
                // SAFETY: see `Vars::ptrs`.
                let arg = unsafe { &*ptrs.arg(expr) };
                !arg.is_shared() && arg_type(arg) == *typ
            })
    }

    /// Push the arguments `arg_exprs` that [`fit_in_place`][Engine::fit_in_place] onto
    /// `args`, counted as the evaluator counts them.
    #[inline(always)]
    fn push_in_place<'x>(
        &self,
        global: &mut GlobalRuntimeState,
        ptrs: VarPtrs,
        arg_exprs: &'x mut [FastExpr],
        args: &mut FnArgsVec<&'x mut Dynamic>,
    ) -> RhaiResultOf<()> {
        for expr in arg_exprs {
            let (FastExpr::Const(_, pos) | FastExpr::Var(_, pos)) = expr else {
                unreachable!("only literals and variables are passed in place")
            };
            self.track_operation(global, *pos)?;
            // SAFETY: see `Vars::ptrs`; no variable is passed in place twice (`in_place`).
            args.push(unsafe { &mut *ptrs.arg(expr) });
        }
        Ok(())
    }

    /// Call the native function a call site resolved to, as the evaluator calls it.
    #[allow(clippy::too_many_arguments)]
    #[inline(always)]
    fn call_cached<'a>(
        &self,
        global: &mut GlobalRuntimeState,
        c: &Cached,
        name: &str,
        qualified: bool,
        first_arg: Option<&'a mut Dynamic>,
        args: &mut [&'a mut Dynamic],
        is_ref_mut: bool,
        pos: Position,
    ) -> RhaiResult {
        if qualified {
            let source = c.entry.source.as_deref();
            return self.call_qualified_native(global, source, name, &c.entry.func, first_arg, args, pos);
        }
        #[cfg(not(feature = "no_closure"))]
        #[cfg(not(feature = "unchecked"))]
        if may_be_locked(args) {
            crate::func::ensure_no_data_race(name, args, is_ref_mut)?;
        }
        self.track_operation(global, pos)?;
        defer! { let orig_level = global.level; global.level += 1 }
        self.call_native_entry(global, name, &c.entry, args, is_ref_mut, false, pos)
            .map(|(v, ..)| v)
    }

    /// Call a function as [`make_function_call`][Engine::make_function_call] and
    /// [`make_qualified_function_call`][Engine::make_qualified_function_call] do.
    #[inline(never)]
    fn eval_fast_call(
        &self,
        global: &mut GlobalRuntimeState,
        caches: &mut Caches,
        vars: &mut Vars,
        mut this_ptr: Option<&mut Dynamic>,
        site: &mut FastCall,
    ) -> RhaiResult {
        let FastCall {
            call,
            pos,
            args: arg_exprs,
            first_var,
            refs,
            cached,
        } = site;
        let (call, pos) = (*call, *pos);
        #[cfg(not(feature = "no_module"))]
        let qualified = !call.namespace.is_empty();
        #[cfg(feature = "no_module")]
        let qualified = false;
        let skip = usize::from(first_var.is_some());
        let name = call.name.as_str();
        let imports = global.num_imports();

        // Every argument in place: none is evaluated, copied or dropped.
        if let Some(c) = cached {
            if c.borrows
                && c.pure
                && first_var.is_none()
                && refs.count_ones() as usize == arg_exprs.len()
                && c.imports == imports
                && Self::fit_in_place(vars.ptrs(), arg_exprs, &c.types)
            {
                let args = &mut FnArgsVec::new();
                self.push_in_place(global, vars.ptrs(), arg_exprs, args)?;
                return self.call_cached(global, c, name, qualified, None, args, false, pos);
            }
        }

        // A function that only reads its arguments is given literals and variables in
        // place; a first argument given by value only if it leaves that alone too.
        let refs = match cached {
            Some(c) if c.borrows && (skip == 1 || c.pure) => *refs,
            Some(c) if c.borrows => *refs & !1,
            _ => 0,
        };
        let values = &mut FnArgsVec::with_capacity(call.args.len());
        if let Some((_, first_pos)) = *first_var {
            self.track_operation(global, first_pos)?;
            // A placeholder for the first argument, should it be copied.
            values.push(Dynamic::UNIT);
        }
        let refs = self.eval_fast_args(global, caches, vars, this_ptr.as_deref_mut(), arg_exprs, refs, values)?;

        // Copies of the arguments passed in place, should the call go elsewhere.
        let mut copies = Vec::new();

        let args = &mut FnArgsVec::with_capacity(call.args.len());
        let mut is_ref_mut = false;
        let mut first_arg = None;
        let ptrs = vars.ptrs();
        let (first_value, rest) = match skip {
            1 => values.split_first_mut().map_or((None, [].iter_mut()), |(f, r)| (Some(f), r.iter_mut())),
            _ => (None, values.iter_mut()),
        };
        if let Some((first, _)) = *first_var {
            // SAFETY: see `Vars::ptrs`; the first variable is not among those in place.
            let target = match first {
                Var::Search(..) => self.fast_target(global, caches, vars, this_ptr, first),
                _ => unsafe { &mut *ptrs.var(first) }.try_into(),
            };
            let mut target = target?;
            if !qualified && target.as_ref().is_read_only() {
                target = target.into_owned();
            }
            let first_value = first_value.unwrap();
            if target.is_shared() || target.is_temp_value() {
                *first_value = target.take_or_clone().flatten();
                args.push(first_value);
            } else {
                first_arg = Some(first_value);
                is_ref_mut = true;
                args.push(target.take_ref().unwrap());
            }
        }
        // SAFETY: see `Vars::ptrs`; no variable is passed in place twice (`in_place`).
        unsafe { ptrs.push_args(arg_exprs, refs, rest, args) };

        if let Some(c) = cached {
            if c.matches(imports, args.iter().map(|a| arg_type(a))) {
                return self.call_cached(global, c, name, qualified, first_arg, args, is_ref_mut, pos);
            }
            *cached = None;
        }

        // The evaluator's own call (which may take the arguments), then whatever native
        // function it resolved to.
        copy_in_place(args, refs, skip, &mut copies);
        let (result, remembered) =
            self.eval_fast_call_slow(global, caches, call, first_arg, args, is_ref_mut, qualified, imports, pos);
        *cached = remembered;
        result
    }

    /// The uncached part of [`eval_fast_call`][Engine::eval_fast_call], out of line (its
    /// locals would sit in the frame of every call waiting in a native): the evaluator's own
    /// call, and the native function it resolved to, if any.
    #[inline(never)]
    #[allow(clippy::too_many_arguments)]
    fn eval_fast_call_slow<'a>(
        &self,
        global: &mut GlobalRuntimeState,
        caches: &mut Caches,
        call: &FnCallExpr,
        first_arg: Option<&'a mut Dynamic>,
        args: &mut [&'a mut Dynamic],
        is_ref_mut: bool,
        qualified: bool,
        imports: usize,
        pos: Position,
    ) -> (RhaiResult, Option<Cached>) {
        let name = call.name.as_str();
        let types: FnArgsVec<TypeId> = args.iter().map(|a| a.type_id()).collect();
        #[cfg(not(feature = "no_module"))]
        if qualified {
            let namespace = &call.namespace;
            let hash = call.hashes.native();
            let key = (imports == 0).then(|| {
                let root = crate::calc_fn_hash(None, namespace.root(), 0);
                crate::func::fold_arg_types(hash ^ root.rotate_left(17), types.iter().copied())
            });
            let Some(module) = self.search_imports(global, namespace) else {
                let err = ERR::ErrorModuleNotFound(namespace.to_string(), namespace.position());
                return (Err(err.into()), None);
            };
            let path = namespace.path.iter().map(|s| s.as_str()).collect::<crate::StaticVec<_>>();
            let result =
                self.exec_qualified_fn_call_raw(global, caches, &module, &path, name, first_arg, args, hash, key, pos);
            let cached = key.and_then(|key| Self::remembered(caches, key, true, types, imports));
            return (result, cached);
        }
        #[cfg(feature = "no_module")]
        let _ = (qualified, first_arg);

        let result = self
            .exec_fn_call(global, caches, None, name, None, call.hashes, args, is_ref_mut, false, pos)
            .map(|(v, ..)| v);
        #[cfg(not(feature = "debugging"))]
        if self.missing_function.is_none() {
            let key = crate::func::func_call::native_call_key(call.hashes, types.iter().copied(), false);
            return (result, Self::remembered(caches, key, false, types, imports));
        }
        (result, None)
    }

    /// Call a method on a variable as the `variable.method(args)` path of
    /// [`eval_dot_index_chain`][Engine::eval_dot_index_chain] does.
    #[inline(never)]
    fn eval_fast_method(
        &self,
        global: &mut GlobalRuntimeState,
        caches: &mut Caches,
        vars: &mut Vars,
        mut this_ptr: Option<&mut Dynamic>,
        site: &mut FastMethod,
    ) -> RhaiResult {
        if site.index.is_some() {
            return self.eval_fast_method_index(global, caches, vars, this_ptr, site);
        }
        let FastMethod {
            call,
            var,
            var_pos,
            args: arg_exprs,
            dot_pos,
            pos,
            refs,
            cached,
            ..
        } = site;
        let (call, pos) = (*call, *pos);
        let name = call.name.as_str();
        let imports = global.num_imports();

        // A variable's method with every argument in place: none is evaluated, copied or
        // dropped.
        if let (Some(c), Var::Local(..) | Var::Outer(..)) = (cached.as_ref(), *var) {
            let ptrs = vars.ptrs();
            let obj = ptrs.var(*var);
            // SAFETY: see `Vars::ptrs`.
            let obj_type = unsafe { (!(*obj).is_shared()).then(|| arg_type(&*obj)) };
            if c.borrows
                && refs.count_ones() as usize == arg_exprs.len()
                && c.imports == imports
                && obj_type.is_some()
                && c.types.first() == obj_type.as_ref()
                && Self::fit_in_place(ptrs, arg_exprs, &c.types[1..])
            {
                // The `.`, then the arguments' chain (if any) or the variable.
                let has_args = !arg_exprs.is_empty();
                self.track_two(global, *dot_pos, if has_args { pos } else { *var_pos })?;
                // SAFETY: see `Vars::ptrs`; the variable is not among those passed in place.
                let mut args = FnArgsVec::new();
                args.push(unsafe { &mut *obj });
                self.push_in_place(global, ptrs, arg_exprs, &mut args)?;
                if has_args {
                    self.track_operation(global, *var_pos)?;
                }
                #[cfg(not(feature = "no_closure"))]
                #[cfg(not(feature = "unchecked"))]
                if may_be_locked(&args) {
                    crate::func::ensure_no_data_race(name, &args, true)?;
                }
                self.track_operation(global, pos)?;
                defer! { let orig_level = global.level; global.level += 1 }
                return self
                    .call_native_entry(global, name, &c.entry, &mut args, true, false, pos)
                    .map(|(v, ..)| v);
            }
        }

        self.track_operation(global, *dot_pos)?;
        let values = &mut FnArgsVec::with_capacity(arg_exprs.len());
        let mut refs = if cached.as_ref().is_some_and(|c| c.borrows) { *refs } else { 0 };
        if !arg_exprs.is_empty() {
            self.track_operation(global, pos)?;
            refs = self.eval_fast_args(global, caches, vars, this_ptr.as_deref_mut(), arg_exprs, refs, values)?;
        }
        self.eval_fast_method_call(global, caches, vars, this_ptr, call, *var, *var_pos, arg_exprs, values, refs, cached, pos)
    }

    /// Count an operation at `first` and one at `second`, as two
    /// [`track_operation`][Engine::track_operation] calls do: both at once when neither
    /// reaches the operations limit or calls the progress callback.
    #[inline(always)]
    fn track_two(&self, global: &mut GlobalRuntimeState, first: Position, second: Position) -> RhaiResultOf<()> {
        #[cfg(not(atomic_ops_count))]
        {
            let n = global.num_operations;
            #[cfg(not(feature = "unchecked"))]
            let room = self.max_operations() == 0 || n + 2 <= self.max_operations();
            #[cfg(feature = "unchecked")]
            let room = true;
            let quiet = self.progress.is_none() || ((n + 1) & self.progress_mask != 0 && (n + 2) & self.progress_mask != 0);
            if room && quiet {
                global.num_operations = n + 2;
                return Ok(());
            }
        }
        self.track_operation(global, first)?;
        self.track_operation(global, second)
    }

    /// `variable.method(args)[index]` as the general path of
    /// [`eval_dot_index_chain`][Engine::eval_dot_index_chain] does: the arguments, then the
    /// index, then the call, then the indexing. Out of line from
    /// [`eval_fast_method`][Engine::eval_fast_method].
    #[inline(never)]
    fn eval_fast_method_index(
        &self,
        global: &mut GlobalRuntimeState,
        caches: &mut Caches,
        vars: &mut Vars,
        mut this_ptr: Option<&mut Dynamic>,
        site: &mut FastMethod,
    ) -> RhaiResult {
        let FastMethod {
            call,
            var,
            var_pos,
            args: arg_exprs,
            dot_pos,
            pos,
            index,
            refs,
            cached,
        } = site;
        let x = index.as_deref_mut().expect("an index");
        self.track_operation(global, *dot_pos)?;
        self.track_operation(global, x.chain_pos)?;
        let values = &mut FnArgsVec::with_capacity(arg_exprs.len());
        let refs = if cached.as_ref().is_some_and(|c| c.borrows) { *refs } else { 0 };
        let refs = self.eval_fast_args(global, caches, vars, this_ptr.as_deref_mut(), arg_exprs, refs, values)?;
        self.track_operation(global, x.count_pos)?;
        let index = flat(self.eval_fast_expr(global, caches, vars, this_ptr.as_deref_mut(), &mut x.index)?);
        let result =
            self.eval_fast_method_call(global, caches, vars, this_ptr, call, *var, *var_pos, arg_exprs, values, refs, cached, *pos)?;
        let target = Target::TempValue(flat(result));
        self.index_target(global, caches, vars.scope, None, target, index, x.index_pos, x.op_pos)
    }

    /// The call of [`eval_fast_method`][Engine::eval_fast_method], its arguments evaluated
    /// into `values` (but for those in place, `refs`).
    #[allow(clippy::too_many_arguments)]
    #[inline(always)]
    fn eval_fast_method_call(
        &self,
        global: &mut GlobalRuntimeState,
        caches: &mut Caches,
        vars: &mut Vars,
        this_ptr: Option<&mut Dynamic>,
        call: &FnCallExpr,
        var: Var,
        var_pos: Position,
        arg_exprs: &mut [FastExpr],
        values: &mut FnArgsVec<Dynamic>,
        refs: u32,
        cached: &mut Option<Cached>,
        pos: Position,
    ) -> RhaiResult {
        let name = call.name.as_str();
        let imports = global.num_imports();
        // Copies of the arguments passed in place, should the call go elsewhere.
        let mut copies = Vec::new();

        self.track_operation(global, var_pos)?;
        let ptrs = vars.ptrs();
        // SAFETY: see `Vars::ptrs`; the variable is not among those passed in place.
        let target = match var {
            Var::Search(..) => self.fast_target(global, caches, vars, this_ptr, var),
            _ => unsafe { &mut *ptrs.var(var) }.try_into(),
        };
        let target = &mut target?;
        // Maps (which may hold a function pointer of that name) and function pointers
        // (`call`, `curry`) take the general path, as in the evaluator.
        let obj = target.as_ref();
        let general = self.missing_function.is_some() || obj.is_map() || obj.is_fnptr();
        let is_ref_mut = target.is_ref();
        let mut args = FnArgsVec::<&mut Dynamic>::with_capacity(arg_exprs.len() + 1);
        args.push(target.as_mut());
        // SAFETY: see `Vars::ptrs`; no variable is passed in place twice (`in_place`).
        unsafe { ptrs.push_args(arg_exprs, refs, values.iter_mut(), &mut args) };

        if !general {
            if !cached.as_ref().is_some_and(|c| c.matches(imports, args.iter().map(|a| arg_type(a)))) {
                *cached = Self::remembered_method(caches, call, args.iter().map(|a| arg_type(a)).collect(), imports);
            }
            if let Some(c) = cached.as_ref() {
                if !c.borrows {
                    copy_in_place(&mut args, refs, 1, &mut copies);
                }
                #[cfg(not(feature = "no_closure"))]
                #[cfg(not(feature = "unchecked"))]
                if may_be_locked(&args) {
                    crate::func::ensure_no_data_race(name, &args, is_ref_mut)?;
                }
                self.track_operation(global, pos)?;
                let done = {
                    defer! { let orig_level = global.level; global.level += 1 }
                    self.call_native_entry(global, name, &c.entry, &mut args, is_ref_mut, false, pos)
                };
                drop(args);
                let (result, updated) = done?;
                if updated {
                    target.propagate_changed_value(pos)?;
                }
                return Ok(result);
            }
        }

        let mut call_args: FnArgsVec<Dynamic> = args
            .drain(1..)
            .enumerate()
            .map(|(k, a)| if refs & (1 << k) == 0 { std::mem::take(a) } else { a.clone() })
            .collect();
        drop(args);
        self.eval_fast_method_slow(global, caches, call, target, &mut call_args, pos)
    }

    /// The uncached call of [`eval_fast_method`][Engine::eval_fast_method], out of line.
    #[inline(never)]
    fn eval_fast_method_slow(
        &self,
        global: &mut GlobalRuntimeState,
        caches: &mut Caches,
        call: &FnCallExpr,
        target: &mut Target,
        call_args: &mut [Dynamic],
        pos: Position,
    ) -> RhaiResult {
        let arg1_pos = call.args.first().map_or(Position::NONE, Expr::position);
        self.make_method_call(global, caches, &call.name, call.hashes, target, call_args, arg1_pos, pos)
            .map(|(v, ..)| v)
    }

    /// The resolution cache's native entry for a method call with these argument types.
    #[inline(never)]
    fn remembered_method(
        caches: &mut Caches,
        call: &FnCallExpr,
        types: FnArgsVec<TypeId>,
        imports: usize,
    ) -> Option<Cached> {
        let key = crate::func::func_call::native_call_key(call.hashes, types.iter().copied(), true);
        Self::remembered(caches, key, false, types, imports)
    }

    /// The resolution cache's native entry under `key`, if any, for a call site.
    fn remembered(
        caches: &mut Caches,
        key: u64,
        qualified: bool,
        types: FnArgsVec<TypeId>,
        imports: usize,
    ) -> Option<Cached> {
        if caches.fn_resolution_caches_len() == 0 {
            return None;
        }
        let cache = caches.fn_resolution_cache_mut();
        let entry = if qualified {
            cache.qualified_calls.get(&key)
        } else {
            cache.native_calls.get(&key)
        };
        entry.map(|entry| Cached {
            types,
            imports,
            borrows: entry.func.borrows_args(),
            pure: entry.func.is_pure(),
            entry: entry.clone(),
        })
    }
}
