#pragma once

#include <cstdint>
#include <cstring>
#include <type_traits>
#include <vector>

#include <caf/detail/stringification_inspector.hpp>
#include <caf/error.hpp>
#include <caf/meta/load_callback.hpp>
#include <caf/meta/type_name.hpp>

namespace actortrain::detail {

/// A floating-point field (or a vector of them) that CAF inspects by its
/// IEEE 754 bits. CAF 0.17's binary serializer, which carries messages
/// between nodes, packs floating-point numbers with caf::detail::pack754:
/// it turns NaN (actortrain's "no metric") into -1, subnormal numbers into
/// huge ones and -0 into 0, and never returns on an infinity. Bits arrive
/// as they left.
template <class T> struct exact_ref { T* value; };

template <class T> struct is_float_vector : std::false_type {};

template <class T, class Allocator>
struct is_float_vector<std::vector<T, Allocator>> : std::is_floating_point<T> {
};

/// The unsigned integer type as wide as floating-point type `T`.
template <class T>
using float_bits =
    std::conditional_t<sizeof(T) == sizeof(uint64_t), uint64_t, uint32_t>;

/// `x` as it crosses nodes: a floating-point number or a vector of them by
/// its bits, anything else as it is; to_string shows the numbers.
template <class T> decltype(auto) exact(T& x) {
  if constexpr (std::is_floating_point_v<T> || is_float_vector<T>::value)
    return exact_ref<T>{&x};
  else
    return (x);
}

/// The inspection of a type that crosses nodes, named `type`: its fields in
/// order, each through exact(), so that a floating-point field added later
/// travels by its bits without anyone having to remember it.
template <class Inspector, class... Ts>
typename Inspector::result_type inspect_fields(Inspector& f, const char* type,
                                               Ts&... fields) {
  return f(caf::meta::type_name(type), exact(fields)...);
}

template <class Inspector, class T>
typename Inspector::result_type inspect(Inspector& f, exact_ref<T>& x) {
  if constexpr (std::is_same_v<Inspector,
                               caf::detail::stringification_inspector>) {
    return f(*x.value);
  } else if constexpr (std::is_floating_point_v<T>) {
    static_assert(sizeof(T) == sizeof(float_bits<T>));
    float_bits<T> bits = 0;
    std::memcpy(&bits, x.value, sizeof bits);
    return f(bits, caf::meta::load_callback([&]() -> caf::error {
               std::memcpy(x.value, &bits, sizeof bits);
               return caf::none;
             }));
  } else {
    using value_type = typename T::value_type;
    static_assert(sizeof(value_type) == sizeof(float_bits<value_type>));
    std::vector<float_bits<value_type>> bits;
    if constexpr (Inspector::reads_state) {
      bits.resize(x.value->size());
      if (!bits.empty())
        std::memcpy(bits.data(), x.value->data(),
                    bits.size() * sizeof(value_type));
    }
    return f(bits, caf::meta::load_callback([&]() -> caf::error {
               x.value->resize(bits.size());
               if (!bits.empty())
                 std::memcpy(x.value->data(), bits.data(),
                             bits.size() * sizeof(value_type));
               return caf::none;
             }));
  }
}

} // namespace actortrain::detail
