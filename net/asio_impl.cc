// The one translation unit that compiles Boost.Asio, Asio's SSL layer and
// Boost.Beast (their "separate compilation" mode, DESIGN.md house style 12).
// Every other file that uses them sees only declarations, because
// BOOST_ASIO_SEPARATE_COMPILATION and BOOST_BEAST_SEPARATE_COMPILATION are
// PUBLIC compile definitions of tenure_net. Without this, each .cc including
// Beast would recompile Asio's and Beast's non-template code (~10 s each).

#include <boost/asio/impl/src.hpp>
#include <boost/asio/ssl/impl/src.hpp>
#include <boost/beast/src.hpp>
