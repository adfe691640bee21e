// The Node-API glue shared by every export: the per-environment instance, typed errors with codes,
// and the argument readers. One style throughout: the C Node-API (node_api.h), each reader
// returning false with a JavaScript exception pending, so a caller returns at once.
//
// Errors are TypeError (code ERR_OPTIM_ARG_TYPE) or RangeError (ERR_OPTIM_ARG_VALUE) for a
// refused argument, plain Error with their own codes for results (not positive definite, ...);
// src/backend/native.ts turns them into optim's own classes by code.
#pragma once

#include <node_api.h>

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <memory>
#include <string>
#include <unordered_set>
#include <vector>

#include "../kernels/kernel_abi.h"
#include "../kernels/linalg.h"

namespace optim {
namespace glue {

// Per-environment state (each worker thread has its own): which kernels run, and the step's
// reusable scratch, so a step allocates nothing once it has grown to the largest group seen.
struct Env {
  // The step kernel set; the built-in linear algebra follows it (AVX2+FMA micro-kernels when
  // the set is AVX2 or wider): one ISA setting for both.
  const KernelTable* table = nullptr;
  // Linear algebra through OpenBLAS/LAPACKE (when the build has them) or the built-in kernels.
  bool openblas = false;
  std::vector<TensorRef<float>> f32;
  std::vector<TensorRef<double>> f64;
  std::vector<TensorRef<float, uint16_t>> bf16;
  std::vector<napi_value> vals;
  // Step calls in progress: an element getter can run JavaScript that calls another step while a
  // list is being read; only the outermost call uses the shared scratch vectors.
  int depth = 0;
  // The prepared lists alive in this environment (addon.cc, Prepared): a step recognises a
  // handle by finding the pointer napi_unwrap gives in this set, so an object wrapped by another
  // addon is never taken for one. Shared with each handle, whose finalizer removes it (and may
  // run after this Env is gone, at the environment's teardown).
  std::shared_ptr<std::unordered_set<const void*>> prepared = std::make_shared<std::unordered_set<const void*>>();

  bool linalg_avx2() const {
    const std::string isa = table->isa;
    return (isa == "avx2" || isa == "avx512") && linalg::cpu_has_avx2();
  }
  linalg::Ctx ctx() const { return {openblas, linalg_avx2()}; }
};

inline Env* env_of(napi_env env) {
  void* data = nullptr;
  napi_get_instance_data(env, &data);
  return static_cast<Env*>(data);
}

// ---- errors ----

using ErrorCtor = napi_status (*)(napi_env, napi_value, napi_value, napi_value*);

inline napi_value make_error(napi_env env, ErrorCtor ctor, const char* code, const std::string& msg) {
  napi_value c, m, e = nullptr;
  napi_create_string_utf8(env, code, NAPI_AUTO_LENGTH, &c);
  napi_create_string_utf8(env, msg.c_str(), msg.size(), &m);
  ctor(env, c, m, &e);
  return e;
}
inline napi_value type_error(napi_env env, const std::string& msg) {
  return make_error(env, napi_create_type_error, "ERR_OPTIM_ARG_TYPE", msg);
}
inline napi_value range_error(napi_env env, const std::string& msg) {
  return make_error(env, napi_create_range_error, "ERR_OPTIM_ARG_VALUE", msg);
}
// Throws `error`; false, for readers.
inline bool fail(napi_env env, napi_value error) {
  napi_throw(env, error);
  return false;
}
// Throws; nullptr, for callbacks (`return throw_type(env, ...)`).
inline napi_value throw_type(napi_env env, const std::string& msg) {
  fail(env, type_error(env, msg));
  return nullptr;
}
inline napi_value throw_range(napi_env env, const std::string& msg) {
  fail(env, range_error(env, msg));
  return nullptr;
}

// ---- values for messages and results ----

inline const char* type_name(napi_typedarray_type t) {
  switch (t) {
    case napi_int8_array: return "Int8Array";
    case napi_uint8_array: return "Uint8Array";
    case napi_uint8_clamped_array: return "Uint8ClampedArray";
    case napi_int16_array: return "Int16Array";
    case napi_uint16_array: return "Uint16Array";
    case napi_int32_array: return "Int32Array";
    case napi_uint32_array: return "Uint32Array";
    case napi_float32_array: return "Float32Array";
    case napi_float64_array: return "Float64Array";
    case napi_bigint64_array: return "BigInt64Array";
    case napi_biguint64_array: return "BigUint64Array";
    default: return "typed array";
  }
}

// A number as JavaScript prints it (NaN, Infinity; 17 significant digits otherwise).
inline std::string num(double v) {
  if (std::isnan(v)) return "NaN";
  if (std::isinf(v)) return v > 0 ? "Infinity" : "-Infinity";
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.17g", v);
  return buf;
}

inline napi_value boolean(napi_env env, bool b) {
  napi_value v;
  napi_get_boolean(env, b, &v);
  return v;
}
inline napi_value string(napi_env env, const char* s) {
  napi_value v;
  napi_create_string_utf8(env, s, NAPI_AUTO_LENGTH, &v);
  return v;
}
inline napi_value number(napi_env env, double d) {
  napi_value v;
  napi_create_double(env, d, &v);
  return v;
}

// ---- argument readers ----

// A number (typeof 'number'); `what` names it in the message.
inline bool read_number(napi_env env, napi_value v, const std::string& what, double* out) {
  napi_valuetype t;
  if (napi_typeof(env, v, &t) != napi_ok || t != napi_number ||
      napi_get_value_double(env, v, out) != napi_ok) {
    return fail(env, type_error(env, what + " must be a number"));
  }
  return true;
}

// A non-negative safe integer.
inline bool read_dim(napi_env env, napi_value v, const std::string& fn, const char* name, size_t* out) {
  double d = 0;
  if (!read_number(env, v, fn + ": " + name, &d)) return false;
  if (!(d >= 0 && d <= 9007199254740991.0 && d == std::floor(d))) {
    return fail(env, range_error(env, fn + ": " + name + " must be a non-negative integer, got " + num(d)));
  }
  *out = size_t(d);
  return true;
}

inline bool read_finite(napi_env env, napi_value v, const std::string& fn, const char* name, double* out) {
  if (!read_number(env, v, fn + ": " + name, out)) return false;
  if (!std::isfinite(*out)) {
    return fail(env, range_error(env, fn + ": " + name + " must be finite, got " + num(*out)));
  }
  return true;
}

// An integer bitmask whose bits all lie within `all`.
inline bool read_flags(napi_env env, napi_value v, const std::string& fn, uint32_t all, uint32_t* out) {
  double d = 0;
  if (!read_number(env, v, fn + ": flags", &d)) return false;
  if (!(d >= 0 && d <= all && d == std::floor(d)) || (static_cast<uint32_t>(d) & ~all)) {
    return fail(env, range_error(env, fn + ": flags must be an integer bitmask within " +
                                          std::to_string(all) + ", got " + num(d)));
  }
  *out = static_cast<uint32_t>(d);
  return true;
}

// A Float64Array.
inline bool read_f64_array(napi_env env, napi_value v, const std::string& fn, const char* arg,
                           double** data, size_t* len) {
  bool is_ta = false;
  if (napi_is_typedarray(env, v, &is_ta) != napi_ok || !is_ta) {
    return fail(env, type_error(env, fn + ": " + arg + " must be a Float64Array"));
  }
  napi_typedarray_type type;
  void* ptr = nullptr;
  if (napi_get_typedarray_info(env, v, &type, len, &ptr, nullptr, nullptr) != napi_ok ||
      type != napi_float64_array) {
    return fail(env, type_error(env, fn + ": " + arg + " must be a Float64Array, got " + type_name(type)));
  }
  *data = static_cast<double*>(ptr);
  return true;
}

// The single argument of a setter such as setIsa(name): a short string.
inline bool read_name(napi_env env, napi_callback_info cbinfo, const char* usage, std::string* out) {
  napi_value argv[1];
  size_t argc = 1;
  napi_get_cb_info(env, cbinfo, &argc, argv, nullptr, nullptr);
  napi_valuetype t;
  char buf[32];
  size_t len = 0;
  if (argc != 1 || napi_typeof(env, argv[0], &t) != napi_ok || t != napi_string ||
      napi_get_value_string_utf8(env, argv[0], buf, sizeof buf, &len) != napi_ok) {
    return fail(env, type_error(env, std::string(usage) + ": name must be a string"));
  }
  *out = std::string(buf, len);
  return true;
}

// Whether an ArrayBuffer or SharedArrayBuffer can change size (ES2024 resizable/growable). Read
// as properties: a getter that throws counts as not resizable (its exception is cleared).
inline bool is_resizable(napi_env env, napi_value buffer) {
  const char* keys[] = {"resizable", "growable"};
  for (const char* key : keys) {
    napi_value v;
    bool b = false;
    if (napi_get_named_property(env, buffer, key, &v) != napi_ok ||
        napi_get_value_bool(env, v, &b) != napi_ok) {
      bool pending = false;
      napi_is_exception_pending(env, &pending);
      if (pending) {
        napi_value ex;
        napi_get_and_clear_last_exception(env, &ex);
      }
      continue;
    }
    if (b) return true;
  }
  return false;
}

}  // namespace glue
}  // namespace optim
