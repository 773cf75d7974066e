// An overload set of lambdas for std::visit. Give it one lambda per
// alternative, each taking that alternative's exact type and none taking
// `auto`: a new alternative then fails to compile until it is handled.
#pragma once

namespace wavekv {

template <typename... Fs>
struct Overloaded : Fs... {
  using Fs::operator()...;
};
template <typename... Fs>
Overloaded(Fs...) -> Overloaded<Fs...>;

}  // namespace wavekv
