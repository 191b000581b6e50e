// Stripe's own card form on the card pages (payments/enter_card.html, confirm_payment.html).
//
// The page holds a hidden form marked data-stripe-card="setup" or "authenticate", with the
// publishable key and the client secret of the SetupIntent or PaymentIntent the server made.
// Once Stripe.js has loaded, this shows the form and hides the fallback message; if Stripe.js did
// not load (blocked, offline, no JavaScript) nothing happens and the fallback says what to do.
//
//   setup:        mount Stripe's card element; on submit confirmCardSetup (the card goes from the
//                 element to Stripe, never to this service), then send only the SetupIntent's id.
//   authenticate: on submit confirmCardPayment (Stripe.js shows the issuer's 3-D Secure check),
//                 then send the form: the server reads the PaymentIntent's outcome from Stripe.
(function () {
  'use strict'

  var form = document.querySelector('form[data-stripe-card]')
  if (!form || typeof window.Stripe !== 'function') {
    return
  }
  var mode = form.getAttribute('data-stripe-card')
  var secret = form.getAttribute('data-client-secret')
  var stripe
  try {
    stripe = window.Stripe(form.getAttribute('data-publishable-key'))
  } catch (error) {
    return
  }
  var button = form.querySelector('#card-submit')
  var errorArea = document.getElementById('card-error')
  var group = document.getElementById('card-group')
  var busy = false

  function showError (message) {
    errorArea.textContent = ''
    var paragraph = document.createElement('p')
    paragraph.className = 'govuk-error-message'
    var prefix = document.createElement('span')
    prefix.className = 'govuk-visually-hidden'
    prefix.textContent = 'Error: '
    paragraph.appendChild(prefix)
    paragraph.appendChild(document.createTextNode(message))
    errorArea.appendChild(paragraph)
    if (group) {
      group.classList.add('govuk-form-group--error')
    }
  }

  function ready () {
    var fallback = document.getElementById('card-fallback')
    if (fallback) {
      fallback.hidden = true
    }
    form.hidden = false
  }

  // The form's button is named "submit", which hides the form's own submit() method.
  function send () {
    window.HTMLFormElement.prototype.submit.call(form)
  }

  function done () {
    busy = false
    if (button) {
      button.disabled = false
    }
  }

  function messageOf (error) {
    return (error && error.message) || 'The card payment service did not answer. Try again.'
  }

  if (mode === 'setup') {
    var card = stripe.elements().create('card', { hidePostalCode: false })
    card.mount('#card-element')
    ready()
    form.addEventListener('submit', function (event) {
      event.preventDefault()
      if (busy) {
        return // a double click: one confirmation at a time
      }
      busy = true
      if (button) {
        button.disabled = true
      }
      stripe.confirmCardSetup(secret, { payment_method: { card: card } }).then(
        function (result) {
          if (result.error || !result.setupIntent) {
            showError(messageOf(result.error))
            done()
            return
          }
          form.querySelector('input[name="setup_intent"]').value = result.setupIntent.id
          send()
        },
        function (error) {
          showError(messageOf(error))
          done()
        }
      )
    })
  } else if (mode === 'authenticate') {
    ready()
    form.addEventListener('submit', function (event) {
      event.preventDefault()
      if (busy) {
        return
      }
      busy = true
      if (button) {
        button.disabled = true
      }
      // Whatever Stripe.js says, the server asks Stripe for the outcome: send the form.
      stripe.confirmCardPayment(secret).then(
        function () { send() },
        function () { send() }
      )
    })
  }
})()
