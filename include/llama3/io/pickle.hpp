#pragma once
// A restricted unpickler for what torch.save writes: a dict of tensors, each rebuilt by
// torch._utils._rebuild_tensor_v2 from a persistent-id storage. It runs no code: the only globals it accepts are
// those on the allow-list below, and every other global, opcode or malformed stream is an Error with its byte
// offset. Values live in an arena owned by the reader, so even a hostile stream that builds cycles cannot leak.
//
// Memory is bounded by the stream's size: strings are views of the stream, None/True/False and () are shared,
// and everything the machine holds (values, the stack, containers' items, the memo) is counted against a budget
// of memory_budget(bytes) = 16 MiB + 4 x the stream; a stream that would take more is an Error, not gigabytes.
// torch.save's pickles take about 10 bytes per byte of stream, and a few hundred KB at most (405B's shards).
#include <algorithm>
#include <cstdint>
#include <cstring>
#include <deque>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "llama3/core/dtype.hpp"
#include "llama3/core/error.hpp"
#include "llama3/core/tensor.hpp"

namespace llama3::io::pickle {

// A tensor as _rebuild_tensor_v2 describes it: a view of a storage (an entry of the archive).
struct TensorRef {
  std::string_view storage_key;    // a view of the stream
  DType dtype = DType::f32;
  std::int64_t storage_numel = 0;  // elements, as the persistent id says
  std::int64_t offset = 0;         // in elements
  Shape shape;
  std::vector<std::int64_t> stride;
};

struct Value {
  enum class Kind : std::uint8_t { none, boolean, integer, real, string, tuple, list, dict, global, storage, tensor };
  Kind kind = Kind::none;
  std::int64_t integer = 0;    // also the boolean
  double real = 0;
  std::string_view string;     // string (a view of the stream); global "module.name"
  std::vector<Value*> items;   // tuple, list; dict: key, value, key, value ... in insertion order
  TensorRef* tensor = nullptr; // tensor; storage (key, dtype, numel)
};

// The most memory a stream of `bytes` bytes may make the reader hold.
inline std::size_t memory_budget(std::size_t bytes) noexcept {
  return (std::size_t{16} << 20) + 4 * std::min<std::size_t>(bytes, std::size_t{1} << 60);
}

class Reader {
public:
  Reader(std::string_view bytes, std::string source)
      : bytes_(bytes), source_(std::move(source)), budget_(memory_budget(bytes.size())) {
    none_.kind = Value::Kind::none;
    true_.kind = false_.kind = Value::Kind::boolean;
    true_.integer = 1;
    empty_tuple_.kind = Value::Kind::tuple;
  }
  Reader(const Reader&) = delete;
  Reader& operator=(const Reader&) = delete;

  // Runs the stream to its STOP and returns the value it built (owned by this Reader).
  const Value* run() {
    std::size_t pos = 0;
    const auto need = [&](std::size_t n) {
      if (n > bytes_.size() - pos) fail(pos, detail::cat("truncated: ", n, " more bytes needed"));
    };
    const auto le = [&](int n) {
      need(static_cast<std::size_t>(n));
      std::uint64_t v = 0;
      for (int i = n - 1; i >= 0; --i) v = (v << 8) | static_cast<unsigned char>(bytes_[pos + static_cast<std::size_t>(i)]);
      pos += static_cast<std::size_t>(n);
      return v;
    };
    const auto text = [&](std::uint64_t n) {
      if (n > bytes_.size() - pos) fail(pos, detail::cat("a string of ", n, " bytes runs past the end"));
      const std::string_view s = bytes_.substr(pos, static_cast<std::size_t>(n));
      pos += static_cast<std::size_t>(n);
      return s;
    };
    const auto line = [&] {
      const std::size_t nl = bytes_.find('\n', pos);
      if (nl == std::string_view::npos) fail(pos, "unterminated line");
      const std::string_view s = bytes_.substr(pos, nl - pos);
      pos = nl + 1;
      return s;
    };

    while (true) {
      if (pos >= bytes_.size()) fail(pos, "no STOP opcode: the pickle is truncated");
      op_at_ = pos;
      const auto op = static_cast<unsigned char>(bytes_[pos++]);
      switch (op) {
        case 0x80: le(1); break;                          // PROTO
        case 0x95: le(8); break;                          // FRAME (protocol 4): framing only
        case '.': {                                       // STOP
          if (stack_.size() != 1 || !marks_.empty()) fail(op_at_, "STOP with a malformed stack");
          return pop();
        }
        case '(':                                         // MARK
          marks_.push_back(stack_.size());
          charge_growth(marks_);
          break;
        case 'N': push(&none_); break;
        case 0x88: push(&true_); break;                   // NEWTRUE
        case 0x89: push(&false_); break;                  // NEWFALSE
        case 'K': push_int(static_cast<std::int64_t>(le(1))); break;                       // BININT1
        case 'M': push_int(static_cast<std::int64_t>(le(2))); break;                       // BININT2
        case 'J': push_int(static_cast<std::int32_t>(static_cast<std::uint32_t>(le(4)))); break;  // BININT
        case 0x8a: {                                      // LONG1: little-endian two's complement
          const auto n = static_cast<int>(le(1));
          if (n > 8) fail(op_at_, detail::cat("LONG1 of ", n, " bytes is out of range"));
          std::uint64_t v = le(n);
          if (n > 0 && n < 8 && (v >> (8 * n - 1)) & 1u) v |= ~std::uint64_t{0} << (8 * n);  // sign-extend
          push_int(static_cast<std::int64_t>(v));
          break;
        }
        case 'G': {                                       // BINFLOAT, big-endian
          need(8);
          std::uint64_t v = 0;
          for (int i = 0; i < 8; ++i) v = (v << 8) | static_cast<unsigned char>(bytes_[pos + static_cast<std::size_t>(i)]);
          pos += 8;
          Value* x = make(Value::Kind::real);
          std::memcpy(&x->real, &v, 8);
          push(x);
          break;
        }
        case 'X': push_string(text(le(4))); break;        // BINUNICODE
        case 0x8c: push_string(text(le(1))); break;       // SHORT_BINUNICODE
        case 0x8d: push_string(text(le(8))); break;       // BINUNICODE8
        case ')': push(&empty_tuple_); break;             // EMPTY_TUPLE (immutable: one for all)
        case ']': push(make(Value::Kind::list)); break;   // EMPTY_LIST
        case '}': push(make(Value::Kind::dict)); break;   // EMPTY_DICT
        case 't': case 'l': case 'd': {                   // TUPLE, LIST, DICT from the last MARK
          std::vector<Value*> items = pop_mark();
          if (op == 'd' && items.size() % 2) fail(op_at_, "DICT with an odd number of items");
          Value* v = make(op == 't' ? Value::Kind::tuple : op == 'l' ? Value::Kind::list : Value::Kind::dict);
          v->items = std::move(items);
          push(v);
          break;
        }
        case 0x85: case 0x86: case 0x87: {                // TUPLE1..3
          const std::size_t n = op - 0x84u;
          if (stack_.size() < n + floor()) fail(op_at_, "TUPLE with too few items");
          Value* v = make(Value::Kind::tuple);
          v->items.assign(stack_.end() - static_cast<std::ptrdiff_t>(n), stack_.end());
          charge(n * sizeof(Value*));
          stack_.resize(stack_.size() - n);
          push(v);
          break;
        }
        case 'q': memo_put(le(1)); break;                 // BINPUT
        case 'r': memo_put(le(4)); break;                 // LONG_BINPUT
        case 0x94: memo_put(memo_.size()); break;         // MEMOIZE
        case 'h': memo_get(le(1)); break;                 // BINGET
        case 'j': memo_get(le(4)); break;                 // LONG_BINGET
        case 'c': {                                       // GLOBAL module\nname\n
          const std::string_view module = line();
          const std::string_view name = line();
          push(global(module, name));
          break;
        }
        case 0x93: {                                      // STACK_GLOBAL
          Value* name = pop();
          Value* module = pop();
          if (module->kind != Value::Kind::string || name->kind != Value::Kind::string) {
            fail(op_at_, "STACK_GLOBAL needs two strings");
          }
          push(global(module->string, name->string));
          break;
        }
        case 'Q': push(persistent_load(pop())); break;    // BINPERSID
        case 'R': {                                       // REDUCE
          Value* args = pop();
          Value* callable = pop();
          push(reduce(callable, args));
          break;
        }
        case 's': {                                       // SETITEM
          Value* value = pop();
          Value* key = pop();
          append(dict_at_top(), {key, value});
          break;
        }
        case 'u': {                                       // SETITEMS
          std::vector<Value*> items = pop_mark();
          if (items.size() % 2) fail(op_at_, "SETITEMS with an odd number of items");
          append(dict_at_top(), items);
          break;
        }
        case 'a': {                                       // APPEND
          Value* v = pop();
          append(list_at_top(), {v});
          break;
        }
        case 'e': {                                       // APPENDS
          std::vector<Value*> items = pop_mark();
          append(list_at_top(), items);
          break;
        }
        default:
          fail(op_at_, detail::cat("opcode 0x", std::hex, static_cast<int>(op), std::dec,
                                   " is not one torch.save writes; refusing to go on"));
      }
    }
  }

  // What the reader holds, as counted against the budget.
  std::size_t bytes_held() const noexcept { return held_; }

private:
  [[noreturn]] void fail(std::size_t offset, const std::string& what) const {
    throw Error(source_, offset, "pickle: " + what);
  }

  // Counts `bytes` more against the budget before they are allocated.
  void charge(std::size_t bytes) {
    held_ += bytes;
    if (held_ > budget_) {
      fail(op_at_, detail::cat("unpickling would hold more than ", budget_ >> 20, " MiB for a stream of ",
                               bytes_.size(), " bytes: not a state dict as torch.save writes it"));
    }
  }
  // A vector that just grew past its capacity is charged its new capacity's growth.
  template <class V>
  void charge_growth(const V& v) {
    if (v.size() == v.capacity()) charge(v.capacity() * sizeof(typename V::value_type) + 64);
  }

  Value* make(Value::Kind k) {
    charge(sizeof(Value));
    arena_.emplace_back().kind = k;
    return &arena_.back();
  }
  void push(Value* v) {
    charge_growth(stack_);
    stack_.push_back(v);
  }
  void push_int(std::int64_t i) {
    Value* v = make(Value::Kind::integer);
    v->integer = i;
    push(v);
  }
  void push_string(std::string_view s) {
    Value* v = make(Value::Kind::string);
    v->string = s;
    push(v);
  }
  void append(Value* container, const std::vector<Value*>& items) {
    charge(2 * items.size() * sizeof(Value*));  // with the vector's slack
    container->items.insert(container->items.end(), items.begin(), items.end());
  }
  std::size_t floor() const { return marks_.empty() ? 0 : marks_.back(); }
  Value* pop() {
    if (stack_.size() <= floor()) fail(op_at_, "stack underflow");
    Value* v = stack_.back();
    stack_.pop_back();
    return v;
  }
  std::vector<Value*> pop_mark() {
    if (marks_.empty()) fail(op_at_, "no MARK to pop to");
    const std::size_t m = marks_.back();
    marks_.pop_back();
    charge((stack_.size() - m) * sizeof(Value*));
    std::vector<Value*> items(stack_.begin() + static_cast<std::ptrdiff_t>(m), stack_.end());
    stack_.resize(m);
    return items;
  }
  Value* top() {
    if (stack_.size() <= floor()) fail(op_at_, "stack underflow");
    return stack_.back();
  }
  Value* dict_at_top() {
    Value* d = top();
    if (d->kind != Value::Kind::dict) fail(op_at_, "SETITEM(S) on something that is not a dict");
    return d;
  }
  Value* list_at_top() {
    Value* l = top();
    if (l->kind != Value::Kind::list) fail(op_at_, "APPEND(S) on something that is not a list");
    return l;
  }
  void memo_put(std::uint64_t index) {
    Value* v = top();
    if (!memo_.contains(index)) charge(64);  // a node of the hash map
    memo_[index] = v;
  }
  void memo_get(std::uint64_t index) {
    const auto it = memo_.find(index);
    if (it == memo_.end()) fail(op_at_, detail::cat("memo entry ", index, " was never stored"));
    push(it->second);
  }

  // The allow-list. Storage classes name the element type of a persistent-id storage.
  Value* global(std::string_view module, std::string_view name) {
    static constexpr std::string_view allowed[] = {
        "torch._utils._rebuild_tensor_v2", "torch._utils._rebuild_parameter", "collections.OrderedDict",
        "torch.FloatStorage", "torch.BFloat16Storage", "torch.HalfStorage"};
    for (const std::string_view a : allowed) {
      if (a.size() == module.size() + 1 + name.size() && a.starts_with(module) && a[module.size()] == '.' &&
          a.ends_with(name)) {
        Value* v = make(Value::Kind::global);
        v->string = a;
        return v;
      }
    }
    fail(op_at_, "global " + detail::quote(std::string(module) + "." + std::string(name), 100) +
                     " is not on the allow-list (a checkpoint must never run code; expected torch tensors only)");
  }

  TensorRef* make_tensor(const TensorRef& from) {
    charge(sizeof(TensorRef) + max_tensor_rank * sizeof(std::int64_t));
    return &tensors_.emplace_back(from);
  }

  // ('storage', <storage class>, key, location, numel)
  Value* persistent_load(Value* pid) {
    if (pid->kind != Value::Kind::tuple || pid->items.size() != 5 || pid->items[0]->kind != Value::Kind::string ||
        pid->items[0]->string != "storage" || pid->items[1]->kind != Value::Kind::global ||
        pid->items[2]->kind != Value::Kind::string || pid->items[4]->kind != Value::Kind::integer) {
      fail(op_at_, "persistent id is not ('storage', <type>, key, location, numel)");
    }
    const std::string_view type = pid->items[1]->string;
    TensorRef t;
    if (type == "torch.FloatStorage") {
      t.dtype = DType::f32;
    } else if (type == "torch.BFloat16Storage") {
      t.dtype = DType::bf16;
    } else if (type == "torch.HalfStorage") {
      t.dtype = DType::f16;
    } else {
      fail(op_at_, "storage type " + std::string(type) + " is not float32, bfloat16 or float16");
    }
    t.storage_key = pid->items[2]->string;
    t.storage_numel = pid->items[4]->integer;
    if (t.storage_numel < 0) fail(op_at_, "negative storage size");
    Value* s = make(Value::Kind::storage);
    s->tensor = make_tensor(t);
    return s;
  }

  Value* reduce(Value* callable, Value* args) {
    if (callable->kind != Value::Kind::global || args->kind != Value::Kind::tuple) {
      fail(op_at_, "REDUCE needs an allowed global and a tuple of arguments");
    }
    const std::string_view f = callable->string;
    const auto& a = args->items;
    if (f == "collections.OrderedDict") {
      if (!a.empty()) fail(op_at_, "OrderedDict with arguments");
      return make(Value::Kind::dict);
    }
    if (f == "torch._utils._rebuild_parameter") {  // (tensor, requires_grad, backward_hooks)
      if (a.empty() || a[0]->kind != Value::Kind::tensor) fail(op_at_, "_rebuild_parameter without a tensor");
      return a[0];
    }
    if (f == "torch._utils._rebuild_tensor_v2") {  // (storage, offset, size, stride, requires_grad, hooks[, meta])
      if (a.size() < 4 || a[0]->kind != Value::Kind::storage || a[1]->kind != Value::Kind::integer ||
          a[2]->kind != Value::Kind::tuple || a[3]->kind != Value::Kind::tuple || a[2]->items.size() != a[3]->items.size()) {
        fail(op_at_, "_rebuild_tensor_v2 arguments are not (storage, offset, size, stride, ...)");
      }
      if (a[2]->items.size() > static_cast<std::size_t>(max_tensor_rank)) fail(op_at_, "tensor of more than 4 dimensions");
      TensorRef t = *a[0]->tensor;
      t.offset = a[1]->integer;
      for (std::size_t i = 0; i < a[2]->items.size(); ++i) {
        const Value* d = a[2]->items[i];
        const Value* s = a[3]->items[i];
        if (d->kind != Value::Kind::integer || s->kind != Value::Kind::integer || d->integer < 0) {
          fail(op_at_, "tensor size and stride must be non-negative integers");
        }
        t.shape.push_back(d->integer);
        t.stride.push_back(s->integer);
      }
      Value* v = make(Value::Kind::tensor);
      v->tensor = make_tensor(t);
      return v;
    }
    fail(op_at_, "cannot call " + std::string(f));
  }

  std::string_view bytes_;
  std::string source_;
  std::size_t budget_;
  std::size_t held_ = 0;
  std::size_t op_at_ = 0;
  Value none_, true_, false_, empty_tuple_;  // immutable, shared by every reference
  std::deque<Value> arena_;
  std::deque<TensorRef> tensors_;
  std::vector<Value*> stack_;
  std::vector<std::size_t> marks_;
  std::unordered_map<std::uint64_t, Value*> memo_;
};

}  // namespace llama3::io::pickle
