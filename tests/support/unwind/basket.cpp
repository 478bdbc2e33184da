// A C++ program whose hot path runs through a namespace, a class template and a method: its frames
// must read as demangled names (shop::Basket<long>::total(long) const, shop::checkout(long)).
#include <chrono>
#include <cstdlib>

namespace shop {

template <typename T> struct Basket {
	T seed;
	__attribute__((noinline)) T total(T n) const
	{
		T x = seed;
		for (T i = 0; i < n; i++)
			x += i * i ^ (x >> 3);
		return x;
	}
};

volatile long sink;

__attribute__((noinline)) long checkout(long n)
{
	Basket<long> b{static_cast<long>(sink & 1)};
	long r = b.total(n);
	sink = sink + r;
	return r + 1;
}

} // namespace shop

int main(int argc, char **argv)
{
	double seconds = argc > 1 ? std::atof(argv[1]) : 5.0;
	auto end = std::chrono::steady_clock::now() + std::chrono::duration<double>(seconds);
	while (std::chrono::steady_clock::now() < end)
		shop::sink = shop::sink + shop::checkout(2000000);
	return 0;
}
