// The storefront: a banner in the shell that stays across routes, a product grid of four
// sponsored products that paginates by re-rendering the same elements with the next page's
// ads (?page=N, by pushState), a product page (/shop/p/ID) with a back link (history.back),
// a login that tells the snippet who the shopper is, and add-to-cart buttons beside each card
// that call the snippet through the early-call queue, so that they count even before it loads.
import { render } from 'preact'
import { useEffect, useState } from 'preact/hooks'

const ian = (...call) => (window.ian = window.ian || []).push(call)
const PER_PAGE = 4

function navigate(url) {
  history.pushState(null, '', url)
  dispatchEvent(new Event('shop:route'))
}

function useLocation() {
  const [href, setHref] = useState(location.href)
  useEffect(() => {
    const update = () => setHref(location.href)
    addEventListener('popstate', update)
    addEventListener('shop:route', update)
    return () => {
      removeEventListener('popstate', update)
      removeEventListener('shop:route', update)
    }
  }, [])
  return new URL(href)
}

function Card({ n, slot }) {
  return (
    <li>
      <div class="card" data-slot={slot} data-ian-ad="sponsored_product" data-ian-tracking-id={`sp-${n}`}
        data-ian-product-id={String(1000 + n)} data-ian-display-position={String(slot + 1)}>
        <a href={`/shop/p/${n}`} onClick={(e) => { e.preventDefault(); navigate(`/shop/p/${n}`) }}>Product {n}</a>
      </div>
      <button class="add" data-n={n}
        onClick={(e) => ian('addToCart', e.target.previousElementSibling, 1)}>Add {n}</button>
    </li>
  )
}

function Grid({ page }) {
  const first = (page - 1) * PER_PAGE + 1
  return (
    <main>
      {/* keyed by slot: the same four elements show every page's ads */}
      <ul class="grid">{[0, 1, 2, 3].map((slot) => <Card key={slot} slot={slot} n={first + slot} />)}</ul>
      <button id="next" onClick={() => navigate(`/shop/?page=${page + 1}`)}>Next page</button>
    </main>
  )
}

function Product({ n }) {
  return (
    <main>
      <h1>Product {n}</h1>
      <button id="back" onClick={() => history.back()}>Back</button>
    </main>
  )
}

function Login() {
  const [user, setUser] = useState('')
  const login = () => {
    setUser('u-7')
    ian('identify', 'u-7')
  }
  return user ? <span id="user">{user}</span> : <button id="login" onClick={login}>Sign in</button>
}

function Shop() {
  const url = useLocation()
  const product = /^\/shop\/p\/(\d+)/.exec(url.pathname)
  return (
    <div>
      <header>
        <Login />
        <div class="banner" data-ian-ad="display_banner" data-ian-tracking-id="shell-banner" data-ian-creative-type="image" />
      </header>
      {product ? <Product n={+product[1]} /> : <Grid page={+(url.searchParams.get('page') || 1)} />}
    </div>
  )
}

render(<Shop />, document.getElementById('app'))
